"""The Glue engine adapter: runs started through the Glue API, candidates read from S3 Parquet.

moto serves the Glue API; each started run is executed by the real job script on local
PySpark over a mirror of the bucket, and its Parquet output is put where Glue would write it.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit, s3_event
from txnpipe.adapters import pgstore
from txnpipe.adapters.glue import GlueUpgradeEngine
from txnpipe.detector import Detector
from txnpipe.events import chunk_refs
from txnpipe.local import services

SCRIPT = Path(__file__).parents[2] / "glue_jobs" / "upgrade_percentiles.py"
JOB = "txnpipe-upgrade"


def _job_module() -> ModuleType:
    name = "upgrade_percentiles_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


class GlueRunningLocally:
    """moto's Glue API; ``start_job_run`` also runs the job on local Spark, as Glue would."""

    def __init__(self, glue: Any, kit: Kit, workdir: Path) -> None:
        self.glue, self.kit, self.workdir = glue, kit, workdir
        self.runs: list[dict[str, str]] = []

    def start_job_run(self, JobName: str, Arguments: dict[str, str]) -> dict[str, str]:
        store = self.kit.store
        for key in store.keys("chunks/") + [self.kit.importance_key]:
            (self.workdir / key).parent.mkdir(parents=True, exist_ok=True)
            (self.workdir / key).write_bytes(store.get(key))
        argv = [arg for pair in Arguments.items() for arg in pair]
        argv += ["--txnpipe_bucket", store.bucket, "--txnpipe_base_uri", self.workdir.as_uri() + "/",
                 "--txnpipe_importance_key", self.kit.importance_key]  # fmt: skip
        argv += [arg for k, v in self.kit.settings.as_dict().items()
                 for arg in (f"--txnpipe_{k}", str(v))]  # fmt: skip
        target = Path(_job_module().main(argv).removeprefix("file:"))
        for part in target.glob("*.parquet"):
            store.put(str(part.relative_to(self.workdir)), part.read_bytes())
        self.runs.append(Arguments)
        return self.glue.start_job_run(JobName=JobName, Arguments=Arguments)

    def get_job_run(self, **kwargs: Any) -> Any:
        return self.glue.get_job_run(**kwargs)


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
