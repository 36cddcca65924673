"""The Glue engine adapter: runs started through the Glue API, candidates read from S3 Parquet."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.datasets import dataset
from tests.functional.glue_local import GlueRunningLocally
from tests.functional.pipeline_kit import Kit, s3_event
from txnpipe import postgres
from txnpipe.aws.glue import GlueUpgradeEngine
from txnpipe.core.detector import Detector
from txnpipe.core.events import chunk_refs
from txnpipe.local import services

JOB = "txnpipe-upgrade"


@pytest.mark.slow
def test_detector_on_glue_gives_the_inline_detections(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    glue_api = services.client("glue", s3_endpoint)
    glue_api.create_job(Name=JOB, Role="arn:aws:iam::123456789012:role/glue",
                        Command={"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/job.py"})  # fmt: skip
    glue = GlueRunningLocally(glue_api, kit, tmp_path)
    engine = GlueUpgradeEngine(glue, kit.store.client, bucket, JOB)
    keys = kit.chunk_keys(kit.write_all_chunks())
    with postgres.connect(database_url) as conn:
        state = postgres.PgDetectorState(conn)
        detector = Detector(kit.store, state, kit.settings, kit.importance_key,
                            upgrade_engine=engine)  # fmt: skip
        half = len(keys) // 2
        detector.handle(chunk_refs(s3_event(bucket, *keys[:half])))  # starts run 0..half-1
        detector.handle(chunk_refs(s3_event(bucket, *keys[half:])))  # merges it, starts the rest
        report = detector.poll_upgrades()  # the state-change event of the second run
    assert [int(r["--txnpipe_first"]) for r in glue.runs] == [0, half]
    assert report.ended == {kit.source}
    got = sorted(row for f in kit.detection_files() for row in f)
    assert got == sorted(row for f in ds.expected() for row in f)


@pytest.fixture
def glue_runs_stay_in_flight() -> Iterator[None]:
    """moto's job runs advance only after a few look-ups, so a run stays in flight."""
    from moto.moto_api import state_manager

    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 50})
    yield
    state_manager.unset_transition("glue::job_run")


def test_a_refused_start_adopts_the_run_in_flight_or_waits(
    s3_endpoint: str, bucket: str, glue_runs_stay_in_flight: None
) -> None:
    """ConcurrentRunsExceededException is no failure: the run of this source and range in
    flight (started by a detector that died before recording it) is adopted; another
    source's run means the engine is busy, and a later call starts it."""
    glue = services.client("glue", s3_endpoint)
    glue.create_job(Name=JOB, Role="arn:aws:iam::123456789012:role/glue",
                    Command={"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/job.py"},
                    ExecutionProperty={"MaxConcurrentRuns": 1})  # fmt: skip
    engine = GlueUpgradeEngine(glue, services.client("s3", s3_endpoint), bucket, JOB)
    weights = "inputs/importance/w.csv"
    first = engine.start("stream_a", 0, 9, weights)
    assert first is not None and (first.first, first.last) == (0, 9)
    (run,) = glue.get_job_runs(JobName=JOB)["JobRuns"]
    assert run["Arguments"]["--txnpipe_importance_key"] == weights  # the stream's own file
    assert engine.start("stream_a", 0, 12, weights) == first  # the crash-orphaned run, adopted
    assert engine.start("stream_b", 0, 3, weights) is None  # busy with another stream's run
    assert engine.start("stream_a", 4, 12, weights) is None  # a run of other points: wait for it
