"""Synthesizing the CDK app for the infra tests, the way the CDK CLI would (cdk.json's context)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the CDK app's packages (infra/) live at the repository root
    sys.path.insert(0, str(REPO))

from infra.node import use_project_node

use_project_node()  # jsii on the project's Node, whatever PATH holds (infra/node.py)

import aws_cdk as cdk
from aws_cdk import assertions

from infra import TxnPipeStack, build


def cdk_json_context() -> dict[str, Any]:
    return json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))["context"]


def is_feature_flag(key: str) -> bool:
    """A key of cdk.json's context that is an aws-cdk-lib feature flag (not txnpipe's own)."""
    return key.startswith("@aws-cdk")


@dataclass
class Synth:
    stack: TxnPipeStack
    outdir: Path
    template_json: dict[str, Any]
    error: Exception | None

    @property
    def template(self) -> assertions.Template:
        return assertions.Template.from_json(self.template_json)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template_json["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    def violations(self) -> list[tuple[str, str, str]]:
        """(plugin, rule, construct path) of every policy-validation finding (cdk-nag and CFN)."""
        report_file = self.outdir / "validation-report.json"
        if not report_file.exists():
            return []
        report = json.loads(report_file.read_text(encoding="utf-8"))
        return [
            (plugin["pluginName"], violation["ruleName"], construct["constructPath"])
            for plugin in report.get("pluginReports", [])
            for violation in plugin.get("violations", [])
            for construct in violation.get("violatingConstructs", [])
        ]


def synthesize(
    outdir: Path, *, bundle: bool = False, nag: bool = False, flags: bool = True, **context: Any
) -> Synth:
    """Synthesize the app into ``outdir``; ``context`` keys are given without the ``txnpipe:`` prefix.

    ``bundle=False`` sets ``aws:cdk:bundling-stacks`` to ``[]``: Lambda code is staged as is and
    nothing is downloaded. ``flags=False`` leaves out cdk.json's feature flags (aws-cdk-lib's
    defaults apply). A validation failure (cdk-nag) is kept in ``error``, not raised.
    """
    ctx = {k: v for k, v in cdk_json_context().items() if flags or not is_feature_flag(k)}
    ctx.update(
        {
            "aws:cdk:enable-path-metadata": True,
            "aws:cdk:enable-asset-metadata": True,
            "txnpipe:nag": nag,
        }
    )
    if not bundle:
        ctx["aws:cdk:bundling-stacks"] = []
    ctx.update({f"txnpipe:{key}": value for key, value in context.items()})
    app = cdk.App(context=ctx, outdir=str(outdir))
    stack = build(app)
    error: Exception | None = None
    try:
        app.synth()
    except RuntimeError as exc:  # jsii surfaces a failed validation as RuntimeError
        error = exc
    template_file = outdir / f"{stack.artifact_id}.template.json"
    template_json = json.loads(template_file.read_text(encoding="utf-8"))
    return Synth(stack=stack, outdir=outdir, template_json=template_json, error=error)
