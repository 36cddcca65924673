"""The dashboard and the alarms on the functions' EMF metrics: a line per stream (namespace
txnpipe, dimensions service and source) on the dashboard, the services' totals over every
stream (dimension service alone) under the alarms, since streams come and go."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.config import (
    CHUNKER_SERVICE,
    DETECTOR_SERVICE,
    METRICS_NAMESPACE,
)
from infra.monitoring import stall_minutes
from tests.infra.synth import Synth


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
    """The totals' dimensions: no stream is fixed at deploy time."""
    return [{"Name": "service", "Value": service}]


def dashboard_body(synth: Synth) -> dict[str, Any]:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, dict):  # Fn::Join of text and {"Ref": "AWS::Region"}
        delimiter, parts = body["Fn::Join"]
        body = delimiter.join(p if isinstance(p, str) else "us-east-1" for p in parts)
    return json.loads(body)


_SEARCH = re.compile(r"SEARCH\('\{txnpipe,service,source\} service=\"(\w+)\" "
                     r"MetricName=\"(\w+)\"', '(\w+)', 60\)")


def dashboard_metrics(synth: Synth) -> set[tuple[str, str, str, str]]:
    """(kind, metric, service, stat) of every txnpipe line of the dashboard: kind "stream"
    for a SEARCH that draws a line per source, "total" for a service's total (CloudWatch
    graphs the average when a line names no statistic, so CDK leaves it out)."""
    found = set()
    for widget in dashboard_body(synth)["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            if isinstance(line[0], dict) and "expression" in line[0]:
                match = _SEARCH.fullmatch(line[0]["expression"])
                assert match, line
                found.add(("stream", match[2], match[1], match[3]))
            elif isinstance(line[0], str) and line[0] == METRICS_NAMESPACE:
                names = dict(zip(line[2:-1:2], line[3:-1:2]))
                assert set(names) == {"service"}
                found.add(("total", line[1], names["service"], line[-1].get("stat", "Average")))
    return found


# -- names shared with the code -------------------------------------------------------------


def test_names_match_the_code() -> None:
    observability = pytest.importorskip("txnpipe.aws.observability")
    assert METRICS_NAMESPACE == observability.NAMESPACE == "txnpipe"
    assert CHUNKER_SERVICE == observability.CHUNKER_SERVICE
    assert DETECTOR_SERVICE == observability.DETECTOR_SERVICE
    assert observability.SOURCE_DIMENSION == "source"


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
    per_stream = {(service, metric) for kind, metric, service, _ in shown if kind == "stream"}
    observability = pytest.importorskip("txnpipe.aws.observability")
    emitted = {
        (CHUNKER_SERVICE, m.name) for m in observability.chunker_metrics(1, 1, False, False)
    } | {
        (DETECTOR_SERVICE, m.name)
        for m in observability.detector_metrics(observability.AppliedStats(), 0, 1.0)
    }
    not_drawn = {(DETECTOR_SERVICE, "DetectionFiles"), (DETECTOR_SERVICE, "Detections"),
                 (CHUNKER_SERVICE, "StreamActive")}  # the live streams are drawn as a total
    assert emitted - not_drawn <= per_stream <= emitted
    totals = {(service, metric) for kind, metric, service, _ in shown if kind == "total"}
    assert totals == {(CHUNKER_SERVICE, m) for m in (
        "StreamsActive", "StreamsStalled", "StreamsRegistered", "StreamsRefused", "StreamsFailed")}


@pytest.mark.parametrize(
    "metric, service, stat",
    [
        ("ChunksWritten", CHUNKER_SERVICE, "Sum"),
        ("Records", CHUNKER_SERVICE, "Sum"),
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
    assert ("stream", metric, service, stat) in dashboard_metrics(default_synth)


def test_dashboard_periods_are_one_minute_and_lag_has_the_alarm_line(default_synth: Synth) -> None:
    widgets = dashboard_body(default_synth)["widgets"]
    for widget in widgets:
        for line in widget.get("properties", {}).get("metrics", []):
            assert line[-1].get("period", 60) == 60, line
    (lag,) = [w for w in widgets if w["properties"].get("title", "").startswith("Chunk lag")]
    assert lag["properties"]["annotations"]["horizontal"][0]["value"] == 60
    (status,) = [w for w in widgets if w["type"] == "alarm"]
    assert len(status["properties"]["alarms"]) == len(
        default_synth.of_type("AWS::CloudWatch::Alarm")
    )


# -- alarms ---------------------------------------------------------------------------------


def test_every_alarm_treats_missing_data_as_not_breaching(default_synth: Synth) -> None:
    alarms = default_synth.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) == 10
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


def test_chunker_stalled_alarm_counts_live_streams_a_tick_wrote_nothing_for(
    default_synth: Synth,
) -> None:
    props = alarm(default_synth, "ChunkerStalled")
    assert (props["Namespace"], props["MetricName"]) == (METRICS_NAMESPACE, "StreamsStalled")
    assert props["Dimensions"] == dims(CHUNKER_SERVICE)
    # a stalled stream in every tick of 3 consecutive minutes (one tick a minute)
    assert (props["Statistic"], props["Period"], props["Threshold"]) == ("Minimum", 60, 1)
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == 3


@pytest.mark.parametrize("name, metric", [("InputRefused", "StreamsRefused"),
                                          ("StreamFailed", "StreamsFailed")])  # fmt: skip
def test_a_refused_put_and_a_failed_stream_alarm(default_synth: Synth, name: str,
                                                 metric: str) -> None:  # fmt: skip
    props = alarm(default_synth, name)
    assert (props["Namespace"], props["MetricName"]) == (METRICS_NAMESPACE, metric)
    assert props["Dimensions"] == dims(CHUNKER_SERVICE)
    assert (props["Statistic"], props["Period"], props["Threshold"]) == ("Sum", 60, 1)
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["EvaluationPeriods"] == 1


def test_stall_window_grows_with_a_long_chunk_interval() -> None:
    assert stall_minutes(7) == 3
    assert stall_minutes(60) == 3
    assert stall_minutes(300) == 7  # one chunk every 5 minutes: 7 silent minutes is a stall


def test_chunker_errors_alarm_is_kept(default_synth: Synth) -> None:
    props = alarm(default_synth, "ChunkerErrors")
    assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ChunkerFunction"}}]
