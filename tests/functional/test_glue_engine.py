"""The Glue engine adapter: runs started through the Glue API, candidates read from S3 Parquet."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.datasets import dataset
from tests.functional.glue_local import GlueRunningLocally
from tests.functional.pipeline_kit import Kit, s3_event
from txnpipe.adapters import pgstore
from txnpipe.adapters.glue import GlueUpgradeEngine
from txnpipe.detector import Detector
from txnpipe.events import chunk_refs
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
    with pgstore.connect(database_url) as conn:
        state = pgstore.PgDetectorState(conn)
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
