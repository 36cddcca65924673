"""The thin handlers delegate to the core; the sample events are what AWS sends and match the triggers."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from tests.infra.synth import REPO, Synth, synthesize

EVENTS = REPO / "events"


@pytest.fixture(scope="module")
def spark_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The Glue job and its state-change rule exist with the spark engine only."""
    result = synthesize(tmp_path_factory.mktemp("cdk-spark-events"), upgradeEngine="spark")
    assert result.error is None
    return result


def load_handler(folder: str, monkeypatch: pytest.MonkeyPatch, calls: list) -> types.ModuleType:
    """Import lambdas/<folder>/handler.py against a stand-in ``txnpipe.aws.entry``."""
    fake_entry = types.ModuleType("txnpipe.aws.entry")

    def recorder(name: str):
        def handle(event: Any, context: Any) -> dict[str, Any]:
            calls.append((name, event, context))
            return {"handled_by": name}

        return handle

    fake_entry.handle_chunker_event = recorder("chunker")  # type: ignore[attr-defined]
    fake_entry.handle_detector_event = recorder("detector")  # type: ignore[attr-defined]
    fake_migration = types.ModuleType("txnpipe.aws.deploy_migration")
    fake_migration.handle_migration_event = recorder("migrator")  # type: ignore[attr-defined]
    fake_package = types.ModuleType("txnpipe")
    fake_package.__path__ = []  # type: ignore[attr-defined]
    fake_package.entry = fake_entry  # type: ignore[attr-defined]
    fake_package.deploy_migration = fake_migration  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "txnpipe", fake_package)
    monkeypatch.setitem(sys.modules, "txnpipe.aws.entry", fake_entry)
    monkeypatch.setitem(sys.modules, "txnpipe.aws.deploy_migration", fake_migration)
    spec = importlib.util.spec_from_file_location(
        f"handler_{folder}", REPO / "lambdas" / folder / "handler.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "folder, event_file",
    [
        ("chunker", "chunker_schedule.json"),
        ("detector", "detector_s3_put.json"),
        ("detector", "detector_glue_state_change.json"),
        ("detector", "detector_sweep.json"),
    ],
)
def test_handler_delegates_to_the_core(
    monkeypatch: pytest.MonkeyPatch, folder: str, event_file: str
) -> None:
    calls: list = []
    module = load_handler(folder, monkeypatch, calls)
    event = json.loads((EVENTS / event_file).read_text())
    context = object()
    assert module.handler(event, context) == {"handled_by": folder}
    assert calls == [(folder, event, context)]


def test_migrator_handler_delegates_to_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []
    module = load_handler("migrator", monkeypatch, calls)
    event = {"RequestType": "Create", "ResourceProperties": {"SchemaHash": "x"}}
    context = object()
    assert module.handler(event, context) == {"handled_by": "migrator"}
    assert calls == [("migrator", event, context)]
    text = (REPO / "lambdas" / "migrator" / "handler.py").read_text()
    assert "from txnpipe.aws.deploy_migration import handle_migration_event" in text
    assert "return handle_migration_event(event, context)" in text


@pytest.mark.parametrize("event_file", ["chunker_schedule.json", "detector_sweep.json"])
def test_schedule_event(event_file: str) -> None:
    """Both schedules send EventBridge's plain scheduled event (no custom input)."""
    event = json.loads((EVENTS / event_file).read_text())
    assert set(event) == {
        "version", "id", "detail-type", "source", "account", "time", "region", "resources",
        "detail",
    }  # fmt: skip
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["detail"] == {}
    assert event["resources"][0].startswith("arn:aws:events:")


def test_sweep_rule_sends_the_plain_scheduled_event(default_synth: Synth) -> None:
    """The sweep target carries no Input, so the detector gets what detector_sweep.json shows."""
    (rule,) = [
        r["Properties"]
        for r in default_synth.of_type("AWS::Events::Rule").values()
        if [t["Arn"] for t in r["Properties"]["Targets"]]
        == [{"Fn::GetAtt": ["DetectorFunction", "Arn"]}]
        and "ScheduleExpression" in r["Properties"]
    ]
    (target,) = rule["Targets"]
    assert not {"Input", "InputPath", "InputTransformer"} & set(target)


def test_sweep_event_is_a_sweep_in_the_core() -> None:
    events = pytest.importorskip("txnpipe.core.events")
    if not hasattr(events, "is_sweep"):
        pytest.skip("the core does not recognise the sweep event yet")
    sweep = json.loads((EVENTS / "detector_sweep.json").read_text())
    assert events.is_sweep(sweep)
    assert not events.is_sweep(json.loads((EVENTS / "detector_s3_put.json").read_text()))
    assert not events.is_sweep(json.loads((EVENTS / "detector_glue_state_change.json").read_text()))


@pytest.mark.parametrize(
    "event_file, key, function",
    [
        ("detector_s3_put.json", "chunks/bs140513_032310/chunk_000000.csv", "DetectorFunction"),
        ("chunker_s3_put_transactions.json", "inputs/transactions/bs140513_032310.csv",
         "ChunkerFunction"),
        ("chunker_s3_put_importance.json", "inputs/importance/bsNET140513_032310.csv",
         "ChunkerFunction"),
    ],
)  # fmt: skip
def test_each_s3_put_event_is_one_the_stack_sends_its_function(
    default_synth: Synth, event_file: str, key: str, function: str
) -> None:
    event = json.loads((EVENTS / event_file).read_text())
    (record,) = event["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "txnpipe-local"
    assert unquote_plus(record["s3"]["object"]["key"]) == key  # S3 sends keys URL-encoded
    (notification,) = default_synth.of_type("Custom::S3BucketNotifications").values()
    configs = notification["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    (config,) = [c for c in configs if key.startswith(c["Filter"]["Key"]["FilterRules"][0]["Value"])]
    assert config["LambdaFunctionArn"] == {"Fn::GetAtt": [function, "Arn"]}
    assert f"s3:{record['eventName']}".startswith(config["Events"][0].removesuffix("*"))


def test_s3_put_event_parses_in_the_core() -> None:
    events = pytest.importorskip("txnpipe.core.events")
    event = json.loads((EVENTS / "detector_s3_put.json").read_text())
    (ref,) = events.chunk_refs(event)
    assert (ref.source, ref.chunk) == ("bs140513_032310", 0)


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge matching for the subset used here: arrays of allowed values, nested objects."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and matches(p, value[k]) for k, p in pattern.items()
        )
    return value in pattern


def test_glue_event_matches_the_rule(default_synth: Synth, spark_synth: Synth) -> None:
    event = json.loads((EVENTS / "detector_glue_state_change.json").read_text())
    assert event["detail"]["state"] == "SUCCEEDED"
    def glue_rules(synth: Synth) -> list[dict[str, Any]]:
        return [r["Properties"]["EventPattern"] for r in synth.of_type("AWS::Events::Rule").values()
                if r["Properties"].get("EventPattern", {}).get("source") == ["aws.glue"]]  # fmt: skip

    assert not glue_rules(default_synth)  # the inline engine has no Glue rule
    patterns = glue_rules(spark_synth)
    (pattern,) = patterns
    assert matches(pattern, event)
    assert not matches(pattern, {**event, "detail": {**event["detail"], "jobName": "other"}})
    assert not matches(pattern, {**event, "detail": {**event["detail"], "state": "RUNNING"}})


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda p: Path(p).name)
def test_events_are_json_objects(path: Path) -> None:
    assert isinstance(json.loads(path.read_text()), dict)
