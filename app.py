#!/usr/bin/env python3
"""CDK app of txnpipe: ``cdk synth`` / ``cdk deploy`` run this (see cdk.json and docs/deploy.md).

Needs no AWS credentials and no Docker to synthesize: the stack is environment-agnostic unless
context ``txnpipe:account`` / ``txnpipe:region`` are given, and the Lambda bundles are built
locally with pip.

Run by the CDK CLI, the CLI supplies the context (cdk.json plus ``-c``) and the output folder.
Run alone (``python app.py``), it reads cdk.json's context itself and writes ``cdk.out/``, so
the result is the same as ``cdk synth``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from infra.node import use_project_node

use_project_node()  # before aws_cdk starts jsii: the project's Node, not PATH's (infra/node.py)

import aws_cdk as cdk

from infra import build

HERE = Path(__file__).resolve().parent


def app_options(environ: dict[str, str] | os._Environ[str] = os.environ) -> dict[str, Any]:
    if "CDK_OUTDIR" in environ:  # launched by the CDK CLI
        return {}
    context: dict[str, Any] = json.loads((HERE / "cdk.json").read_text(encoding="utf-8"))["context"]
    # What the CLI turns on by default; the asset metadata is what `sam local invoke` reads.
    context.setdefault("aws:cdk:enable-path-metadata", True)
    context.setdefault("aws:cdk:enable-asset-metadata", True)
    context.update(json.loads(environ.get("CDK_CONTEXT_JSON") or "{}"))
    return {"context": context, "outdir": str(HERE / "cdk.out")}


def main() -> cdk.App:
    app = cdk.App(**app_options())
    build(app)
    app.synth()
    return app


if __name__ == "__main__":
    main()
