"""cfn-lint over the synthesized templates: clean in the regions a deployment is likely to use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import lint

from tests.infra.synth import Synth, synthesize

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"]


def lint_template(template: dict) -> list[str]:
    return [
        f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})"
        for m in lint(json.dumps(template), regions=REGIONS)
    ]


def test_default_template_is_clean(default_synth: Synth) -> None:
    assert lint_template(default_synth.template_json) == []


def test_only_w3005_is_ignored_and_why(default_synth: Synth) -> None:
    """The one ignored check is redundant DependsOn that aws-cdk-lib itself emits."""
    metadata = default_synth.template_json["Metadata"]["cfn-lint"]["config"]
    assert metadata == {"ignore_checks": ["W3005"]}
    template = dict(default_synth.template_json)
    template.pop("Metadata")
    rules = {m.split()[0] for m in lint_template(template)}
    assert rules <= {"W3005"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"upgradeEngine": "spark"},  # the Glue engine: core zip asset, --extra-py-files
        {
            "removalPolicy": "destroy",
            "localInvoke": True,
            "dbMultiAz": True,
            "upgradeEngine": "spark",
            "settings": {"chunk_rows": 500, "upgrade_count_percentile": 0.95},
            "alarmTopicArn": "arn:aws:sns:ap-south-1:111122223333:ops",
            "bucketName": "txnpipe-data-example",
        },
    ],
)
def test_variant_template_is_clean(tmp_path: Path, overrides: dict) -> None:
    result = synthesize(tmp_path, **overrides)
    assert result.error is None
    assert lint_template(result.template_json) == []
