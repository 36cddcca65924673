"""``python app.py`` synthesizes with no AWS credentials and no Docker."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.infra.synth import REPO, cdk_json_context


def load_app_module():
    spec = importlib.util.spec_from_file_location("txnpipe_cdk_app", REPO / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines main() without running it
    return module


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CDK_")) and k != "DOCKER_HOST"
    }
    env.update(
        {
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
            "CDK_DOCKER": "/nonexistent/docker",  # any attempt to use Docker would fail loudly
        }
    )
    env.update(extra)
    return env


def test_app_py_synthesizes_like_the_cli(tmp_path: Path) -> None:
    """As the CLI runs it: cdk.json's context in CDK_CONTEXT_JSON, output dir in CDK_OUTDIR."""
    context = {**cdk_json_context(), "aws:cdk:bundling-stacks": []}
    result = subprocess.run(
        [sys.executable, "app.py"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(CDK_OUTDIR=str(tmp_path), CDK_CONTEXT_JSON=json.dumps(context)),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    template = json.loads((tmp_path / "TxnPipe.template.json").read_text())
    assert "ChunkerFunction" in template["Resources"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["artifacts"]["TxnPipe"]["environment"] == "aws://unknown-account/unknown-region"


def test_standalone_run_reads_cdk_json() -> None:
    app = load_app_module()
    assert app.app_options({"CDK_OUTDIR": "/somewhere"}) == {}
    options = app.app_options({"CDK_CONTEXT_JSON": '{"txnpipe:runSeconds": 40}'})
    assert options["outdir"] == str(REPO / "cdk.out")
    context = options["context"]
    assert context["txnpipe:runSeconds"] == 40
    assert context["aws:cdk:enable-asset-metadata"] is True
    assert context["@aws-cdk/core:checkSecretUsage"] is True  # feature flags from cdk.json
