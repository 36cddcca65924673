"""The Lambda handlers on the sample events in events/, against moto and real PostgreSQL."""
from __future__ import annotations

import copy
import csv
import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit
from txnpipe.aws import entry
from txnpipe.core.keys import chunk_key, manifest_key, source_name
from txnpipe.local import services
from txnpipe.local.invoke import invoke_handler
from txnpipe.tools.cli import main

EVENTS = Path(__file__).parents[3] / "events"


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, database_url: str, s3_endpoint: str,
               bucket: str) -> Kit:  # fmt: skip
    """The environment CDK gives the functions, pointed at moto and the test database."""
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    env = {
        "TXNPIPE_DATABASE_URL": database_url,
        "TXNPIPE_S3_ENDPOINT": s3_endpoint,
        "TXNPIPE_BUCKET": bucket,
        "TXNPIPE_TRANSACTIONS_KEY": kit.input_key,
        "TXNPIPE_IMPORTANCE_KEY": kit.importance_key,
        "TXNPIPE_RUN_SECONDS": "0",
        "AWS_ACCESS_KEY_ID": services.LOCAL_KEY,
        "AWS_SECRET_ACCESS_KEY": services.LOCAL_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.update({f"TXNPIPE_{k.upper()}": str(v) for k, v in kit.settings.as_dict().items()})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(entry, "_connections", {})
    entry._s3_client.cache_clear()
    return kit


def _put_event(key: str) -> dict[str, object]:
    event = copy.deepcopy(json.loads((EVENTS / "detector_s3_put.json").read_text()))
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


def test_handlers_on_sample_events_give_the_reference_detections(lambda_env: Kit) -> None:
    schedule = json.loads((EVENTS / "chunker_schedule.json").read_text())
    written: list[int] = []
    while True:
        result = invoke_handler("chunker", schedule)
        written += result["written"]
        if result["done"]:
            break
    assert written == list(range(len(written))) and written
    source = source_name(lambda_env.input_key)
    for k in reversed(written):  # S3 events may arrive in any order
        invoke_handler("detector", _put_event(chunk_key(source, k)))
    result = invoke_handler("detector", _put_event(manifest_key(source)))
    assert result["ended"] == [source]
    assert lambda_env.detection_files() == dataset().expected()


def test_sample_detector_event_names_a_chunk() -> None:
    from txnpipe.core.events import chunk_refs

    refs = chunk_refs(json.loads((EVENTS / "detector_s3_put.json").read_text()))
    assert [(r.source, r.chunk) for r in refs] == [("bs140513_032310", 0)]


def test_invoke_command_runs_the_chunker(lambda_env: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "chunker", "--event", str(EVENTS / "chunker_schedule.json")]) == 0
    result = json.loads(capsys.readouterr().out)  # interval 0: every chunk is due at once
    assert result["done"] and result["written"] == list(range(24))


def test_invoke_command_names_a_missing_event(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "detector", "--event", "/nonexistent.json"]) == 2
    assert "cannot read event" in capsys.readouterr().err


# -- observability: JSON logs and EMF metrics ---------------------------------------------


def _telemetry(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(EMF documents, log records): every line written is one JSON object."""
    emf: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    for line in text.splitlines():
        document = json.loads(line)
        (emf if "_aws" in document else logs).append(document)
    return emf, logs


def _only_emf(text: str, service: str) -> dict[str, Any]:
    emf, _ = _telemetry(text)
    (document,) = [d for d in emf if d["service"] == service]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "txnpipe"
    assert [sorted(d) for d in directive["Dimensions"]] == [["service", "source"]]
    declared = {m["Name"] for m in directive["Metrics"]}
    assert declared == {k for k in document if k not in ("_aws", "service", "source")}
    return document


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in Lambda: telemetry goes to stdout, which Lambda ships to CloudWatch Logs."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "txnpipe-test")


def _rejects(kit: Kit, source: str) -> int:
    count = 0
    for key in kit.store.keys(f"rejects/{source}/"):
        rows = list(csv.reader(io.StringIO(kit.store.get(key).decode(), newline="")))
        count += len(rows) - 1
    return count


def test_detector_emits_emf_metrics_and_structured_logs(
    lambda_env: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = json.loads((EVENTS / "chunker_schedule.json").read_text())
    written = invoke_handler("chunker", schedule)["written"]
    source = source_name(lambda_env.input_key)
    chunks = len(written)
    assert chunks > 2
    first = lambda_env.store.get(chunk_key(source, 0))  # chunk 0 has not landed yet
    lambda_env.store.client.delete_object(Bucket=lambda_env.store.bucket, Key=chunk_key(source, 0))
    started = time.monotonic()
    for k in reversed(range(1, chunks)):  # every chunk but the first lands, and waits
        assert invoke_handler("detector", _put_event(chunk_key(source, k)))["applied"] == []
    waiting = _only_emf(capsys.readouterr().out.splitlines()[-1], "detector")
    assert waiting["ChunksApplied"] == [0] and waiting["PendingChunks"] == [chunks - 1]
    assert "ChunkLagSeconds" not in waiting  # nothing applied, no lag yet
    assert 0 < waiting["PendingChunkAgeSeconds"][0] < time.monotonic() - started + 1

    lambda_env.store.put(chunk_key(source, 0), first)
    result = invoke_handler("detector", _put_event(chunk_key(source, 0)))
    elapsed = time.monotonic() - started
    assert result["applied"] == list(range(chunks))
    out = capsys.readouterr().out
    metrics = _only_emf(out, "detector")
    assert metrics["source"] == source
    manifest = json.loads(lambda_env.store.get(manifest_key(source)))
    expected = Counter(row[0] for batch in dataset().expected() for row in batch)
    assert all(expected[p] for p in ("PatId1", "PatId2", "PatId3"))
    assert metrics["ChunksApplied"] == [chunks]
    assert metrics["Records"] == [manifest["records"]]
    rejects = _rejects(lambda_env, source)
    assert rejects > 0 and metrics["Rejects"] == [rejects]
    for pattern in ("PatId1", "PatId2", "PatId3"):
        assert metrics[f"Detections{pattern}"] == [expected[pattern]], pattern
    assert metrics["Detections"] == [sum(expected.values())] == [result["detections"]]
    assert metrics["DetectionFiles"] == [len(result["files"])]
    assert metrics["PendingChunks"] == [0] and metrics["PendingChunkAgeSeconds"] == [0]
    # One lag per chunk, landed to applied, in chunk order: chunk k >= 1 landed before
    # chunk k-1 and was applied after it, and chunk 0 landed last and went first.
    lags = metrics["ChunkLagSeconds"]
    assert len(lags) == chunks and lags == sorted(lags)
    assert 0 <= lags[0] and lags[-1] <= elapsed
    (duration,) = metrics["DetectorDurationMs"]
    assert 0 < duration <= elapsed * 1000

    _, logs = _telemetry(out)
    assert logs and all(log["service"] == "detector" for log in logs)
    for log in logs:
        assert log["source"] == source
        assert log["chunk_keys"] == [chunk_key(source, 0)]
        assert log["function_request_id"] == "local"
        assert log["function_name"] == "txnpipe-detector"
    (summary,) = [log for log in logs if log["message"] == "chunks applied"]
    assert summary["level"] == "INFO"
    assert summary["applied_chunk_keys"] == [chunk_key(source, k) for k in range(chunks)]
    assert summary["records"] == manifest["records"] and summary["rejects"] == rejects
    assert summary["detections"] == {p: expected[p] for p in ("PatId1", "PatId2", "PatId3")}


def test_chunker_emits_emf_metrics_and_structured_logs(
    lambda_env: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    schedule = json.loads((EVENTS / "chunker_schedule.json").read_text())
    source = source_name(lambda_env.input_key)
    rows = lambda_env.settings.chunk_rows
    monkeypatch.setenv("TXNPIPE_CHUNK_INTERVAL_SECONDS", "3600")  # only chunk 0 is due
    assert invoke_handler("chunker", schedule)["written"] == [0]
    out = capsys.readouterr().out
    first = _only_emf(out, "chunker")
    assert first["source"] == source
    assert (first["ChunksWritten"], first["Records"]) == ([1], [rows])
    assert first["StreamActive"] == [1] and first["Busy"] == [0]
    _, logs = _telemetry(out)
    (log,) = logs
    assert (log["message"], log["service"], log["source"]) == ("chunker tick", "chunker", source)
    assert log["chunk_keys"] == [chunk_key(source, 0)]
    assert log["function_request_id"] == "local"

    monkeypatch.setenv("TXNPIPE_CHUNK_INTERVAL_SECONDS", "0")  # the rest is due at once
    rest = invoke_handler("chunker", schedule)
    assert rest["done"]
    manifest = json.loads(lambda_env.store.get(manifest_key(source)))
    second = _only_emf(capsys.readouterr().out, "chunker")
    assert second["ChunksWritten"] == [manifest["chunks"] - 1]
    assert second["Records"] == [manifest["records"] - rows] == [rest["records"]]
    assert second["StreamActive"] == [0]

    invoke_handler("chunker", schedule)  # the stream is done: nothing to write, not stalled
    third = _only_emf(capsys.readouterr().out, "chunker")
    assert (third["ChunksWritten"], third["Records"], third["StreamActive"]) == ([0], [0], [0])


def test_locally_telemetry_goes_to_stderr(
    lambda_env: Kit, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside Lambda stdout keeps only what ``txnpipe invoke`` prints: the handler's result."""
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    invoke_handler("chunker", json.loads((EVENTS / "chunker_schedule.json").read_text()))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert _only_emf(captured.err, "chunker")["ChunksWritten"]


def test_a_telemetry_failure_does_not_fail_the_invocation(
    lambda_env: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The chunk is applied; failing to report it must not make Lambda retry the event."""
    from txnpipe.aws import observability

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("metrics query failed")

    invoke_handler("chunker", json.loads((EVENTS / "chunker_schedule.json").read_text()))
    monkeypatch.setattr(observability, "applied_stats", broken)
    source = source_name(lambda_env.input_key)
    assert invoke_handler("detector", _put_event(chunk_key(source, 0)))["applied"] == [0]
    emf, logs = _telemetry(capsys.readouterr().out)
    assert not [d for d in emf if d["service"] == "detector"]
    (failure,) = [log for log in logs if log["message"] == "telemetry failed"]
    assert failure["level"] == "ERROR" and "metrics query failed" in failure["exception"]
    assert failure["source"] == source and failure["function_request_id"] == "local"


def test_pattern_counts_add_up_with_a_batch_engine(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """With PatId1 from a batch engine, merged by later invocations, each invocation counts
    exactly the detections it recorded: over the stream they add up to the reference."""
    from tests.functional.pipeline_kit import s3_event
    from txnpipe import postgres
    from txnpipe.aws import observability
    from txnpipe.core.detector import Detector
    from txnpipe.core.events import chunk_refs
    from txnpipe.local.engines import LocalUpgradeEngine

    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    chunks = kit.write_all_chunks()
    expected = Counter(row[0] for batch in ds.expected() for row in batch)
    engine = LocalUpgradeEngine("duckdb", kit.store, kit.importance_key, kit.settings)
    log = observability.logger(observability.DETECTOR_SERVICE)
    counted: Counter[int] = Counter()
    recorded = merges = 0
    try:
        with postgres.connect(kit.database_url) as conn:
            detector = Detector(kit.store, postgres.PgDetectorState(conn), kit.settings,
                                kit.importance_key, upgrade_engine=engine)  # fmt: skip

            def invoke(event: dict[str, Any] | None) -> None:
                nonlocal recorded, merges
                first = observability.detections_so_far(log, conn, [kit.source])[kit.source]
                refs = chunk_refs(event) if event is not None else None
                report = detector.handle(refs) if refs is not None else detector.poll_upgrades()
                applied = [chunk for _, chunk in report.applied]
                stats = observability.applied_stats(
                    conn, kit.source, applied, first, report.upgrade_runs
                )
                counted.update(stats.by_pattern)
                recorded += report.detections
                merges += len(report.upgrade_runs)

            for key in kit.chunk_keys(chunks):
                invoke(s3_event(bucket, key))
            deadline = time.monotonic() + 120
            while recorded < sum(expected.values()) and time.monotonic() < deadline:
                time.sleep(0.05)
                invoke(None)  # a batch run's completion event
    finally:
        engine.close()
    assert merges >= 1
    assert recorded == sum(expected.values())
    assert counted == Counter({1: expected["PatId1"], 2: expected["PatId2"], 3: expected["PatId3"]})


@pytest.mark.slow
def test_detector_hands_patid1_to_glue_and_merges_on_the_state_change_event(
    lambda_env: Kit, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, tmp_path: Path
) -> None:
    from tests.functional.glue_local import run_job

    glue = services.client("glue", s3_endpoint)
    glue.create_job(Name="txnpipe-upgrade", Role="arn:aws:iam::123456789012:role/glue",
                    Command={"Name": "glueetl", "ScriptLocation": "s3://b/job.py"})  # fmt: skip
    monkeypatch.setenv("TXNPIPE_UPGRADE_ENGINE", "spark")
    monkeypatch.setenv("TXNPIPE_GLUE_JOB_NAME", "txnpipe-upgrade")
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", s3_endpoint)
    schedule = json.loads((EVENTS / "chunker_schedule.json").read_text())
    written = invoke_handler("chunker", schedule)["written"]
    source = source_name(lambda_env.input_key)
    keys = [chunk_key(source, k) for k in written] + [manifest_key(source)]
    landed = {"Records": [r for key in keys for r in _put_event(key)["Records"]]}
    result = invoke_handler("detector", landed)
    assert result["applied"] == written and result["ended"] == []  # PatId1 is pending
    (run,) = glue.get_job_runs(JobName="txnpipe-upgrade")["JobRuns"]
    assert (run["Arguments"]["--txnpipe_first"], run["Arguments"]["--txnpipe_last"]) == (
        "0", str(written[-1]))
    run_job(lambda_env, run["Arguments"], tmp_path)  # what the Glue job writes to S3
    state_change = json.loads((EVENTS / "detector_glue_state_change.json").read_text())
    result = invoke_handler("detector", state_change)
    assert result["ended"] == [source]
    got = sorted(row for f in lambda_env.detection_files() for row in f)
    assert got == sorted(row for f in dataset().expected() for row in f)


def test_the_sweep_event_finishes_a_stream_whose_every_event_was_lost(
    lambda_env: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The detector's own schedule: no chunk event and no manifest event ever came."""
    schedule = json.loads((EVENTS / "chunker_schedule.json").read_text())
    while not invoke_handler("chunker", schedule)["done"]:
        pass
    sweep = json.loads((EVENTS / "detector_sweep.json").read_text())
    source = source_name(lambda_env.input_key)
    capsys.readouterr()
    result = invoke_handler("detector", sweep)
    assert result["ended"] == [source]
    assert lambda_env.detection_files() == dataset().expected()
    metrics = _only_emf(capsys.readouterr().out, "detector")
    chunks = json.loads(lambda_env.store.get(manifest_key(source)))["chunks"]
    assert metrics["EventsRecovered"] == [chunks + 1]  # every chunk and the manifest
    assert invoke_handler("detector", sweep)["applied"] == []  # an ended stream: nothing to do


def test_the_first_event_reports_the_importance_rows_it_skipped(
    lambda_env: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    good = lambda_env.store.get(lambda_env.importance_key)
    lambda_env.store.put(lambda_env.importance_key, good + b"'C1','M1',1e308,'x',0\n'C2'\n")
    invoke_handler("chunker", json.loads((EVENTS / "chunker_schedule.json").read_text()))
    source = source_name(lambda_env.input_key)
    capsys.readouterr()
    invoke_handler("detector", _put_event(chunk_key(source, 0)))
    out = capsys.readouterr().out
    metrics = _only_emf(out, "detector")
    _, logs = _telemetry(out)
    (applied,) = [log for log in logs if log["message"] == "chunks applied"]
    assert applied["importance_rows_skipped"] == metrics["ImportanceRowsSkipped"][0] >= 2
    assert applied["importance_rows"] == metrics["ImportanceRows"][0] == good.count(b"\n") + 1
    invoke_handler("detector", _put_event(chunk_key(source, 1)))  # weights loaded once
    assert "ImportanceRowsSkipped" not in _only_emf(capsys.readouterr().out, "detector")
