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
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.keys import chunk_key, manifest_key, source_name
from txnpipe.local import services
from txnpipe.local.invoke import invoke_handler
from txnpipe.tools.cli import main

EVENTS = Path(__file__).parents[3] / "events"


@pytest.fixture
def lambda_environment(monkeypatch: pytest.MonkeyPatch, database_url: str, s3_endpoint: str,
                       bucket: str) -> Kit:  # fmt: skip
    """The environment CDK gives the functions, pointed at moto and the test database, and
    the inputs in the bucket (their stream not registered yet)."""
    ds = dataset()
    services.client("s3", s3_endpoint).put_bucket_versioning(  # as the stack's bucket does
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    env = {
        "TXNPIPE_DATABASE_URL": database_url,
        "TXNPIPE_S3_ENDPOINT": s3_endpoint,
        "TXNPIPE_BUCKET": bucket,
        "TXNPIPE_RUN_SECONDS": "0",
        "AWS_ACCESS_KEY_ID": services.LOCAL_KEY,
        "AWS_SECRET_ACCESS_KEY": services.LOCAL_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.update({f"TXNPIPE_{k.upper()}": str(v) for k, v in kit.settings.as_dict().items()})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(entry, "_connections", {})
    entry.clear_clients()
    return kit


@pytest.fixture
def lambda_env(lambda_environment: Kit) -> Kit:
    """... with the stream registered, by the transactions file's put event."""
    kit = lambda_environment
    assert invoke_handler("chunker", input_put_event(kit, kit.input_key))["registered"] == [
        kit.source]  # fmt: skip
    return kit


def _put_event(key: str) -> dict[str, object]:
    event = copy.deepcopy(json.loads((EVENTS / "detector_s3_put.json").read_text()))
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


def input_put_event(kit: Kit, key: str, sample: str = "chunker_s3_put_transactions.json"
                    ) -> dict[str, Any]:  # fmt: skip
    """The sample event of an input's put, naming ``key`` and the version the bucket holds."""
    event = copy.deepcopy(json.loads((EVENTS / sample).read_text()))
    version = kit.store.version(key)
    event["Records"][0]["s3"]["bucket"]["name"] = kit.store.bucket
    event["Records"][0]["s3"]["object"].update(
        key=key, eTag=version.etag, versionId=version.version_id or "null")
    return event


def tick(event: dict[str, Any] | None = None) -> dict[str, Any]:
    """The chunker's minute tick, and what it did for the one stream."""
    schedule = event or json.loads((EVENTS / "chunker_schedule.json").read_text())
    (stream,) = invoke_handler("chunker", schedule)["streams"]
    return dict(stream)


def test_handlers_on_sample_events_give_the_reference_detections(lambda_env: Kit) -> None:
    schedule = json.loads((EVENTS / "chunker_schedule.json").read_text())
    written: list[int] = []
    while True:
        result = tick(schedule)
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
    (result,) = json.loads(capsys.readouterr().out)["streams"]  # interval 0: all due at once
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


def _only_emf(text: str, service: str, per_source: bool = True) -> dict[str, Any]:
    """The one EMF document of ``service`` for a source (or its totals over every stream)."""
    emf, _ = _telemetry(text)
    (document,) = [d for d in emf if d["service"] == service and ("source" in d) == per_source]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "txnpipe"
    dimensions = ["service", "source"] if per_source else ["service"]
    assert [sorted(d) for d in directive["Dimensions"]] == [dimensions]
    declared = {m["Name"] for m in directive["Metrics"]}
    assert declared == {k for k in document if k not in ("_aws", *dimensions)}
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
    written = tick(schedule)["written"]
    source = source_name(lambda_env.input_key)
    chunks = len(written)
    assert chunks > 2
    first = lambda_env.store.get(chunk_key(source, 0))  # chunk 0 has not landed yet
    lambda_env.store.client.delete_object(Bucket=lambda_env.store.bucket, Key=chunk_key(source, 0))
    started = time.monotonic()
    for k in reversed(range(1, chunks)):  # every chunk but the first lands, and waits
        assert invoke_handler("detector", _put_event(chunk_key(source, k)))["applied"] == []
    last_invocation = capsys.readouterr().out.splitlines()[-2:]  # a source's, then the totals
    waiting = _only_emf("\n".join(last_invocation), "detector")
    assert _only_emf("\n".join(last_invocation), "detector", per_source=False)[
        "PendingChunkAgeSeconds"] == waiting["PendingChunkAgeSeconds"]  # fmt: skip
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
    assert tick(schedule)["written"] == [0]
    out = capsys.readouterr().out
    first = _only_emf(out, "chunker")
    assert first["source"] == source
    assert (first["ChunksWritten"], first["Records"]) == ([1], [rows])
    assert first["StreamActive"] == [1] and first["Busy"] == [0]
    totals = _only_emf(out, "chunker", per_source=False)
    assert (totals["ChunksWritten"], totals["StreamsActive"], totals["StreamsStalled"]) == (
        [1], [1], [0])  # fmt: skip
    _, logs = _telemetry(out)
    (log,) = logs
    assert (log["message"], log["service"], log["source"]) == ("chunker tick", "chunker", source)
    assert log["chunk_keys"] == [chunk_key(source, 0)]
    assert log["function_request_id"] == "local"

    monkeypatch.setenv("TXNPIPE_CHUNK_INTERVAL_SECONDS", "0")  # the rest is due at once
    rest = tick(schedule)
    assert rest["done"]
    manifest = json.loads(lambda_env.store.get(manifest_key(source)))
    second = _only_emf(capsys.readouterr().out, "chunker")
    assert second["ChunksWritten"] == [manifest["chunks"] - 1]
    assert second["Records"] == [manifest["records"] - rows] == [rest["records"]]
    assert second["StreamActive"] == [0]

    # the stream is done: the tick has nothing to do, and no stream is stalled
    assert invoke_handler("chunker", schedule)["streams"] == []
    totals = _only_emf(capsys.readouterr().out, "chunker", per_source=False)
    assert (totals["ChunksWritten"], totals["StreamsActive"], totals["StreamsStalled"]) == (
        [0], [0], [0])  # fmt: skip


def test_locally_telemetry_goes_to_stderr(
    lambda_env: Kit, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside Lambda stdout keeps only what ``txnpipe invoke`` prints: the handler's result."""
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    tick()
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

    tick()
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
    engine = LocalUpgradeEngine("duckdb", kit.store, kit.settings)
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
    written = tick(schedule)["written"]
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
    while not tick(schedule)["done"]:
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
    lambda_environment: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lambda_env = lambda_environment
    good = lambda_env.store.get(lambda_env.importance_key)
    lambda_env.store.put(lambda_env.importance_key, good + b"'C1','M1',1e308,'x',0\n'C2'\n")
    invoke_handler("chunker", input_put_event(lambda_env, lambda_env.input_key))
    tick()
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


# -- streams as data: an input's put registers its stream ---------------------------------


def _stream_row(kit: Kit, source: str) -> tuple[Any, ...] | None:
    import psycopg

    with psycopg.connect(kit.database_url) as conn:
        return conn.execute(
            "SELECT s.input_key, s.input_version_id, s.importance_key, s.importance_version_id,"
            " s.status, s.error FROM txnpipe.streams s JOIN txnpipe.sources USING (source_id)"
            " WHERE name = %s", [source]).fetchone()  # fmt: skip


def _refusals(kit: Kit) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(kit.database_url) as conn:
        rows = conn.execute("SELECT source, reason FROM txnpipe.stream_refusals ORDER BY refusal_id")
        return [(source, reason) for source, reason in rows]


def test_an_input_put_registers_its_stream_pinned_to_both_files_versions(
    lambda_environment: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = lambda_environment
    event = input_put_event(kit, kit.input_key)
    assert invoke_handler("chunker", event) == {"registered": [kit.source], "refused": []}
    input_version, importance_version = (kit.store.version(kit.input_key),
                                         kit.store.version(kit.importance_key))  # fmt: skip
    assert input_version.version_id and importance_version.version_id
    assert _stream_row(kit, kit.source) == (kit.input_key, input_version.version_id,
                                            kit.importance_key, importance_version.version_id,
                                            "live", None)  # fmt: skip
    out = capsys.readouterr().out
    assert _only_emf(out, "chunker", per_source=False)["StreamsRegistered"] == [1]
    _, logs = _telemetry(out)
    (line,) = [log for log in logs if log["message"] == "stream registered"]
    assert (line["source"], line["importance_key"]) == (kit.source, kit.importance_key)
    # S3 delivers an event at least once: the same event again is no new stream, no refusal
    assert invoke_handler("chunker", event) == {"registered": [], "refused": []}
    assert _refusals(kit) == []


def test_a_live_streams_name_put_again_is_refused_recorded_and_changes_nothing(
    lambda_env: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    kit = lambda_env
    monkeypatch.setenv("TXNPIPE_CHUNK_INTERVAL_SECONDS", "3600")  # only chunk 0 is due
    first = tick()["written"]
    capsys.readouterr()
    original = kit.store.get(kit.input_key)
    kit.store.put(kit.input_key, original.replace(b"es_transportation", b"es_other"))
    result = invoke_handler("chunker", input_put_event(kit, kit.input_key))
    assert result == {"registered": [], "refused": [kit.source]}
    ((source, reason),) = _refusals(kit)
    assert source == kit.source and "exists (live)" in reason and "restart" in reason
    out = capsys.readouterr().out
    assert _only_emf(out, "chunker", per_source=False)["StreamsRefused"] == [1]
    _, logs = _telemetry(out)
    (line,) = [log for log in logs if log["message"] == "input put refused"]
    assert line["level"] == "WARNING" and line["reason"] == reason
    # The stream goes on from the version it started with, to the same detections
    monkeypatch.setenv("TXNPIPE_CHUNK_INTERVAL_SECONDS", "0")
    assert first == [0] and tick()["done"]
    for k in range(json.loads(kit.store.get(manifest_key(kit.source)))["chunks"]):
        invoke_handler("detector", _put_event(chunk_key(kit.source, k)))
    invoke_handler("detector", _put_event(manifest_key(kit.source)))
    assert kit.detection_files() == dataset().expected()


def test_an_importance_put_is_recorded_in_the_log_and_changes_no_stream(
    lambda_env: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = lambda_env
    pinned = _stream_row(kit, kit.source)
    newer = "inputs/importance/newer.csv"
    kit.store.put(newer, kit.store.get(kit.importance_key))
    event = input_put_event(kit, newer, sample="chunker_s3_put_importance.json")
    assert invoke_handler("chunker", event) == {"registered": [], "refused": []}
    _, logs = _telemetry(capsys.readouterr().out)
    (line,) = [log for log in logs if log["message"].startswith("importance file put")]
    assert line["importance_key"] == newer
    assert _stream_row(kit, kit.source) == pinned
    # a stream registered from now on weighs with the newest file
    kit.store.put("inputs/transactions/later.csv", kit.store.get(kit.input_key))
    invoke_handler("chunker", input_put_event(kit, "inputs/transactions/later.csv"))
    later = _stream_row(kit, "later")
    assert later is not None and later[2] == newer


def test_a_stream_whose_file_is_no_transactions_file_fails_alone(
    lambda_env: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    kit = lambda_env
    monkeypatch.setenv("TXNPIPE_CHUNK_INTERVAL_SECONDS", "3600")  # a chunk per stream per tick
    bad = "inputs/transactions/bad.csv"
    kit.store.put(bad, b"customer,merchant,value\nC1,M1,1\n")
    assert invoke_handler("chunker", input_put_event(kit, bad))["registered"] == ["bad"]
    capsys.readouterr()
    result = invoke_handler("chunker", json.loads((EVENTS / "chunker_schedule.json").read_text()))
    streams = {s["source"]: s for s in result["streams"]}
    assert streams[kit.source]["written"] and streams[kit.source]["failed"] is None
    assert "header" in streams["bad"]["failed"] and not streams["bad"]["written"]
    row = _stream_row(kit, "bad")
    assert row is not None and row[4:] == ("failed", streams["bad"]["failed"])
    out = capsys.readouterr().out
    assert _only_emf(out, "chunker", per_source=False)["StreamsFailed"] == [1]
    assert kit.store.keys("chunks/bad/") == []
    # a failed stream is not ticked again; the good one goes on
    monkeypatch.setenv("TXNPIPE_CHUNK_INTERVAL_SECONDS", "0")
    assert tick()["source"] == kit.source


def test_without_an_importance_file_the_stream_is_registered_failed(
    lambda_environment: Kit, in_lambda: None
) -> None:
    kit = lambda_environment
    kit.store.client.delete_object(Bucket=kit.store.bucket, Key=kit.importance_key)
    assert invoke_handler("chunker", input_put_event(kit, kit.input_key))["registered"] == [kit.source]
    row = _stream_row(kit, kit.source)
    assert row is not None and row[4] == "failed" and "no importance file" in row[5]
    assert invoke_handler("chunker", json.loads((EVENTS / "chunker_schedule.json").read_text()))[
        "streams"] == []  # fmt: skip


def test_an_invalid_name_is_refused(lambda_environment: Kit) -> None:
    kit = lambda_environment
    key = "inputs/transactions/.csv"
    kit.store.put(key, kit.store.get(kit.input_key))
    assert invoke_handler("chunker", input_put_event(kit, key))["refused"] == [".csv"]
    ((_, reason),) = _refusals(kit)
    assert "source name" in reason


def test_the_tick_registers_a_stream_whose_put_event_was_lost(
    lambda_environment: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Behind a long tick (reserved concurrency 1) a put's event can age out: the next
    tick finds the file by listing, registers it and starts it."""
    kit = lambda_environment
    kit.store.put("inputs/transactions/bad name.csv", b"x")  # no valid source: left alone
    report = tick()
    assert report["source"] == kit.source and report["written"]
    _, logs = _telemetry(capsys.readouterr().out)
    (line,) = [log for log in logs if log["message"] == "stream registered"]
    assert line["source"] == kit.source
    assert _stream_row(kit, kit.source) is not None and _refusals(kit) == []


def test_the_purge_event_purges_an_ended_stream_and_refuses_a_live_one(
    lambda_env: Kit, in_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = lambda_env
    purge = {"txnpipe": "purge", "source": kit.source}
    written = tick()["written"]
    invoke_handler("detector", _put_event(chunk_key(kit.source, written[0])))
    with pytest.raises(TxnpipeError, match="is live"):
        invoke_handler("detector", purge)
    for k in written[1:]:
        invoke_handler("detector", _put_event(chunk_key(kit.source, k)))
    assert invoke_handler("detector", _put_event(manifest_key(kit.source)))["ended"] == [kit.source]
    capsys.readouterr()
    result = invoke_handler("detector", purge)
    assert result["purged"] == kit.source and result["removed"]["history"] > 0
    _, logs = _telemetry(capsys.readouterr().out)
    (line,) = [log for log in logs if log["message"] == "stream purged"]
    assert line["removed"] == result["removed"]
    assert kit.detection_files() == dataset().expected()  # the outputs stay



def test_each_detection_file_puts_one_event_on_the_bus_after_the_file(
    lambda_env: Kit, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    """The sample rule of docs/deploy.md, on moto's EventBridge, sends them to a queue."""
    from txnpipe.aws.detection_events import DETAIL_TYPE, SOURCE

    events, sqs = services.client("events", s3_endpoint), services.client("sqs", s3_endpoint)
    bus = "txnpipe-test-detections"
    events.create_event_bus(Name=bus)
    queue = sqs.create_queue(QueueName="txnpipe-test-detection-files")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    docs = (Path(__file__).parents[3] / "docs" / "deploy.md").read_text()
    pattern = json.loads(docs.split("```json\n", 1)[1].split("```", 1)[0])
    events.put_rule(Name="files", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="files", EventBusName=bus,
                       Targets=[{"Id": "q", "Arn": arn["QueueArn"]}])  # fmt: skip
    monkeypatch.setenv("TXNPIPE_EVENT_BUS", bus)
    written = tick()["written"]
    keys = [chunk_key(lambda_env.source, k) for k in written] + [manifest_key(lambda_env.source)]
    landed = {"Records": [r for key in keys for r in _put_event(key)["Records"]]}
    files = invoke_handler("detector", landed)["files"]
    got = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        got += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    assert {(e["source"], e["detail-type"]) for e in got} == {(SOURCE, DETAIL_TYPE)}
    assert [e["detail"]["key"] for e in got] == files and files
    expected = dataset().expected()
    for event, rows in zip(got, expected, strict=True):
        detail = event["detail"]
        assert (detail["stream"], detail["bucket"]) == (lambda_env.source, lambda_env.store.bucket)
        assert detail["rows"] == len(rows)
        assert detail["by_pattern"] == {p: sum(r[0] == p for r in rows)
                                        for p in ("PatId1", "PatId2", "PatId3")}  # fmt: skip
