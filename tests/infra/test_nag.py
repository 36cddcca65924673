"""cdk-nag's AwsSolutions checks over the stack: no errors, and every acknowledgment earns its keep."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

import infra.nag
from tests.infra.synth import Synth, synthesize


@pytest.fixture(scope="module")
def nag_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-nag"), nag=True)


def test_aws_solutions_checks_pass(nag_synth: Synth) -> None:
    assert nag_synth.error is None, "\n".join(map(str, nag_synth.violations()))
    assert nag_synth.violations() == []


def test_every_acknowledgment_matches_a_finding_and_vice_versa(tmp_path: Path) -> None:
    """With acknowledgments recorded instead of applied, the findings are exactly those acknowledged."""
    acknowledged: list[tuple[str, str]] = []

    def record(scope, rule_id: str, reason: str) -> None:  # type: ignore[no-untyped-def]
        assert len(reason.strip()) >= infra.nag.MIN_REASON_LENGTH, (rule_id, reason)
        acknowledged.append((scope.node.path, rule_id))

    with pytest.MonkeyPatch.context() as patch:
        for name, module in list(sys.modules.items()):
            if (name == "infra" or name.startswith("infra.")) and hasattr(module, "acknowledge"):
                patch.setattr(module, "acknowledge", record)
        result = synthesize(tmp_path, nag=True)

    assert result.error is not None, "the stack has no finding at all: acknowledgments are stale"
    findings = {(rule, path) for plugin, rule, path in result.violations()}
    assert all(plugin == "AwsSolutions" for plugin, _, _ in result.violations())

    def covers(ack: tuple[str, str], finding: tuple[str, str]) -> bool:
        path, rule = ack
        return finding[0] == rule and (finding[1] == path or finding[1].startswith(path + "/"))

    unused = [ack for ack in acknowledged if not any(covers(ack, f) for f in findings)]
    uncovered = [f for f in findings if not any(covers(ack, f) for ack in acknowledged)]
    assert unused == [], f"acknowledgments without a finding: {unused}"
    assert uncovered == [], f"findings without an acknowledgment: {uncovered}"


def test_nag_fails_a_non_compliant_stack(tmp_path: Path) -> None:
    """Negative control: the plugin as registered by infra.build does fail a synth."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad")
    s3.Bucket(stack, "Plain")
    infra.nag.add_nag_checks(app)
    with pytest.raises(RuntimeError, match="[Vv]alidation"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-S1" in report and "AwsSolutions-S10" in report


def test_an_acknowledgment_needs_a_reason() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match="reason"):
        infra.nag.acknowledge(stack, "AwsSolutions-S1", "because")
    with pytest.raises(ValueError, match="rule id"):
        infra.nag.acknowledge(stack, "S1", "a long enough reason for the check")
