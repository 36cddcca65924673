"""The dashboard and the alarms on the functions' EMF metrics (namespace txnpipe, service, source)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import (
    CHUNKER_SERVICE,
    DETECTOR_SERVICE,
    METRICS_NAMESPACE,
    ConfigError,
    TxnPipeConfig,
)
from infra.monitoring import stall_minutes
from tests.infra.synth import Synth

SOURCE = "bs140513_032310"  # cdk.json's transactions key, without folder and extension


def alarm(synth: Synth, name: str) -> dict[str, Any]:
    """The properties of the alarm whose construct id is ``name``."""
    found = [
        resource["Properties"]
        for logical, resource in synth.of_type("AWS::CloudWatch::Alarm").items()
        if logical.startswith(f"Monitoring{name}")
    ]
    assert len(found) == 1, f"expected one alarm {name}, got {len(found)}"
    return found[0]


def dims(service: str) -> list[dict[str, str]]:
    return [{"Name": "service", "Value": service}, {"Name": "source", "Value": SOURCE}]


def dashboard_body(synth: Synth) -> dict[str, Any]:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, dict):  # Fn::Join of text and {"Ref": "AWS::Region"}
        delimiter, parts = body["Fn::Join"]
        body = delimiter.join(p if isinstance(p, str) else "us-east-1" for p in parts)
    return json.loads(body)


def dashboard_metrics(synth: Synth) -> set[tuple[str, str, str, str]]:
    """(namespace, metric, service, stat) of every plain metric line of the dashboard
    (CloudWatch graphs the average when a line names no statistic, so CDK leaves it out)."""
    found = set()
    for widget in dashboard_body(synth)["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            if isinstance(line[0], str) and line[0] == METRICS_NAMESPACE:
                names = dict(zip(line[2:-1:2], line[3:-1:2]))
                assert names["source"] == SOURCE
                found.add((line[0], line[1], names["service"], line[-1].get("stat", "Average")))
    return found


# -- names shared with the code -------------------------------------------------------------


def test_names_match_the_code() -> None:
    observability = pytest.importorskip("txnpipe.aws.observability")
    assert METRICS_NAMESPACE == observability.NAMESPACE == "txnpipe"
    assert CHUNKER_SERVICE == observability.CHUNKER_SERVICE
    assert DETECTOR_SERVICE == observability.DETECTOR_SERVICE
    assert observability.SOURCE_DIMENSION == "source"


@pytest.mark.parametrize(
    "key",
    [
        "inputs/transactions/bs140513_032310.csv",
        "inputs/transactions/a/b/transactions.v2.csv",
        "inputs/transactions/plain",
    ],
)
def test_source_dimension_is_the_core_source_name(key: str) -> None:
    keys = pytest.importorskip("txnpipe.core.keys")
    assert TxnPipeConfig.from_mapping({"transactionsKey": key}).source == keys.source_name(key)


@pytest.mark.parametrize(
    "key",
    ["inputs/transactions/.csv", "inputs/transactions/bad name.csv", "inputs/transactions/x$.csv"],
)
def test_a_key_without_a_usable_source_name_is_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="transactionsKey"):
        TxnPipeConfig.from_mapping({"transactionsKey": key})


def test_functions_get_the_powertools_settings(default_synth: Synth) -> None:
    for function, service in (
        ("ChunkerFunction", CHUNKER_SERVICE),
        ("DetectorFunction", DETECTOR_SERVICE),
    ):
        env = default_synth.resources[function]["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == service
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE


def test_emf_needs_no_cloudwatch_permission(default_synth: Synth) -> None:
    """EMF metrics are log lines: the functions' roles only write their own logs."""
    for policy in default_synth.of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            for action in actions if isinstance(actions, list) else [actions]:
                assert not action.startswith("cloudwatch:"), action


# -- dashboard ------------------------------------------------------------------------------


def test_dashboard_shows_every_metric_the_code_emits(default_synth: Synth) -> None:
    (dashboard,) = default_synth.of_type("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "TxnPipe"
    shown = dashboard_metrics(default_synth)
    names = {(service, metric) for _, metric, service, _ in shown}
    observability = pytest.importorskip("txnpipe.aws.observability")
    emitted = {
        (CHUNKER_SERVICE, m.name) for m in observability.chunker_metrics(1, 1, False, False)
    } | {
        (DETECTOR_SERVICE, m.name)
        for m in observability.detector_metrics(observability.AppliedStats(), 0, 1.0)
    }
    assert (
        emitted - {(DETECTOR_SERVICE, "DetectionFiles"), (DETECTOR_SERVICE, "Detections")} <= names
    )
    assert names <= emitted


@pytest.mark.parametrize(
    "metric, service, stat",
    [
        ("ChunksWritten", CHUNKER_SERVICE, "Sum"),
        ("Records", CHUNKER_SERVICE, "Sum"),
        ("StreamActive", CHUNKER_SERVICE, "Maximum"),
        ("ChunksApplied", DETECTOR_SERVICE, "Sum"),
        ("Records", DETECTOR_SERVICE, "Sum"),
        ("Rejects", DETECTOR_SERVICE, "Sum"),
        ("DetectionsPatId1", DETECTOR_SERVICE, "Sum"),
        ("DetectionsPatId2", DETECTOR_SERVICE, "Sum"),
        ("DetectionsPatId3", DETECTOR_SERVICE, "Sum"),
        ("ChunkLagSeconds", DETECTOR_SERVICE, "Maximum"),
        ("ChunkLagSeconds", DETECTOR_SERVICE, "Average"),
        ("PendingChunkAgeSeconds", DETECTOR_SERVICE, "Maximum"),
        ("DetectorDurationMs", DETECTOR_SERVICE, "Average"),
        ("DetectorDurationMs", DETECTOR_SERVICE, "p99"),
    ],
)
def test_dashboard_widget(default_synth: Synth, metric: str, service: str, stat: str) -> None:
    assert (METRICS_NAMESPACE, metric, service, stat) in dashboard_metrics(default_synth)


def test_dashboard_periods_are_one_minute_and_lag_has_the_alarm_line(default_synth: Synth) -> None:
    widgets = dashboard_body(default_synth)["widgets"]
    for widget in widgets:
        for line in widget.get("properties", {}).get("metrics", []):
            assert line[-1]["period"] == 60, line
    (lag,) = [w for w in widgets if w["properties"].get("title", "").startswith("Chunk lag")]
    assert lag["properties"]["annotations"]["horizontal"][0]["value"] == 60
    (status,) = [w for w in widgets if w["type"] == "alarm"]
    assert len(status["properties"]["alarms"]) == len(
        default_synth.of_type("AWS::CloudWatch::Alarm")
    )


# -- alarms ---------------------------------------------------------------------------------


def test_every_alarm_treats_missing_data_as_not_breaching(default_synth: Synth) -> None:
    alarms = default_synth.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) == 8
    for resource in alarms.values():
        assert resource["Properties"]["TreatMissingData"] == "notBreaching"


def test_dead_letter_queue_alarm(default_synth: Synth) -> None:
    props = alarm(default_synth, "DeadLetterQueueNotEmpty")
    assert (props["Namespace"], props["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert (props["Statistic"], props["Period"], props["Threshold"]) == ("Maximum", 60, 0)
    assert props["ComparisonOperator"] == "GreaterThanThreshold"


def test_detector_errors_alarm(default_synth: Synth) -> None:
    props = alarm(default_synth, "DetectorErrors")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/Lambda", "Errors")
    assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "DetectorFunction"}}]
    assert (props["Statistic"], props["Period"], props["Threshold"]) == ("Sum", 300, 0)
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["EvaluationPeriods"] == 1


def test_lag_alarm(default_synth: Synth) -> None:
    props = alarm(default_synth, "ChunkLagHigh")
    assert (props["Namespace"], props["MetricName"]) == (METRICS_NAMESPACE, "ChunkLagSeconds")
    assert props["Dimensions"] == dims(DETECTOR_SERVICE)
    assert (props["Statistic"], props["Period"], props["Threshold"]) == ("Maximum", 60, 60)
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["EvaluationPeriods"] == 1


def test_waiting_chunk_alarm(default_synth: Synth) -> None:
    props = alarm(default_synth, "ChunkWaitingTooLong")
    assert props["MetricName"] == "PendingChunkAgeSeconds"
    assert props["Dimensions"] == dims(DETECTOR_SERVICE)
    assert (props["Statistic"], props["Period"], props["Threshold"]) == ("Maximum", 60, 60)
    assert props["ComparisonOperator"] == "GreaterThanThreshold"


def test_chunker_stalled_alarm_is_metric_math(default_synth: Synth) -> None:
    props = alarm(default_synth, "ChunkerStalled")
    assert "MetricName" not in props
    by_id = {m["Id"]: m for m in props["Metrics"]}
    (expression,) = [m for m in props["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "IF(active >= 1 AND written == 0, 1, 0)"
    assert expression["ReturnData"] is True
    for metric_id, name, stat in (
        ("active", "StreamActive", "Maximum"),
        ("written", "ChunksWritten", "Sum"),
    ):
        stat_props = by_id[metric_id]["MetricStat"]
        assert stat_props["Metric"] == {
            "Namespace": METRICS_NAMESPACE,
            "MetricName": name,
            "Dimensions": dims(CHUNKER_SERVICE),
        }
        assert (stat_props["Stat"], stat_props["Period"]) == (stat, 60)
        assert by_id[metric_id]["ReturnData"] is False
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["Threshold"] == 1
    assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == 3  # 3 consecutive minutes


def test_stall_window_grows_with_a_long_chunk_interval() -> None:
    assert stall_minutes(7) == 3
    assert stall_minutes(60) == 3
    assert stall_minutes(300) == 7  # one chunk every 5 minutes: 7 silent minutes is a stall


def test_chunker_errors_alarm_is_kept(default_synth: Synth) -> None:
    props = alarm(default_synth, "ChunkerErrors")
    assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ChunkerFunction"}}]
