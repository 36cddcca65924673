"""The bundles work on their own (issue 17): each Lambda bundle, built the same way for this
host's Python, imports its handler and runs it on the sample events, in a fresh interpreter
whose ``sys.path`` holds only the bundle and boto3 (which Lambda's runtime provides); the Glue
job's zip runs the job script on local PySpark with no other copy of txnpipe in reach. A
module missing from a bundle fails here, not at the first event in AWS."""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from infra import bundling
from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit
from txnpipe.core.keys import chunk_key, manifest_key
from txnpipe.local import services

REPO = Path(__file__).resolve().parents[2]
HOST = f"{sys.version_info.major}.{sys.version_info.minor}"
# boto3 and what it needs: the Lambda runtime's own copy, not the bundle's.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six",
                    "urllib3")  # fmt: skip

pytestmark = pytest.mark.slow


def _runtime_dir(target: Path) -> Path:
    """boto3 and its dependencies alone, copied from this environment."""
    for name in RUNTIME_PACKAGES:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or ():
            source = Path(dist.locate_file(file))
            if source.is_file() and ".." not in file.parts:
                (target / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / file)
    return target


def _bundle(function: str, target: Path, requirements: tuple[str, ...]) -> Path:
    bundler = bundling.LocalPipBundling(REPO / "lambdas" / function / "handler.py",
                                        requirements=requirements, python_version=HOST)  # fmt: skip
    return bundler.bundle_into(target)


_PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import handler
context = type("Context", (), {"function_name": "smoke", "aws_request_id": "local"})()
for event in json.loads(sys.stdin.read()):
    print(json.dumps(handler.handler(event, context), default=str))
print(json.dumps({"txnpipe": handler.__file__ and __import__("txnpipe").__file__}))
"""


def _invoke(bundle: Path, runtime: Path, events: list[dict[str, object]],
            env: dict[str, str]) -> list[dict[str, object]]:  # fmt: skip
    """Run the bundle's handler on ``events`` in ``python -S`` (no site-packages at all)."""
    done = subprocess.run([sys.executable, "-S", "-c", _PROBE, str(bundle), str(runtime)],
                          input=json.dumps(events), capture_output=True, text=True, env=env,
                          cwd=bundle, check=False, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    *results, where = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert str(where["txnpipe"]).startswith(str(bundle))  # the bundle's copy, no other
    return results


def _put(key: str) -> dict[str, object]:
    event = json.loads((REPO / "events" / "detector_s3_put.json").read_text())
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


def test_each_lambda_bundle_runs_its_handler_on_its_own(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    runtime = _runtime_dir(tmp_path / "runtime")
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
        "TXNPIPE_DATABASE_URL": database_url, "TXNPIPE_S3_ENDPOINT": s3_endpoint,
        "TXNPIPE_BUCKET": bucket, "TXNPIPE_RUN_SECONDS": "0",
        "AWS_ACCESS_KEY_ID": services.LOCAL_KEY, "AWS_SECRET_ACCESS_KEY": services.LOCAL_KEY,
        "AWS_DEFAULT_REGION": services.REGION,
        **{f"TXNPIPE_{k.upper()}": str(v) for k, v in kit.settings.as_dict().items()},
    }  # fmt: skip
    chunker = _bundle("chunker", tmp_path / "chunker", bundling.read_requirements())
    put = json.loads((REPO / "events" / "chunker_s3_put_transactions.json").read_text())
    put["Records"][0]["s3"]["object"]["versionId"] = "null"  # the test bucket keeps none
    put["Records"][0]["s3"]["object"]["eTag"] = kit.store.version(kit.input_key).etag
    schedule = json.loads((REPO / "events" / "chunker_schedule.json").read_text())
    registered, ticks = _invoke(chunker, runtime, [put, schedule], env)
    assert registered == {"registered": [kit.source], "refused": []}
    (ticked,) = ticks["streams"]  # type: ignore[index]
    assert ticked["done"] and ticked["written"]
    detector = _bundle("detector", tmp_path / "detector", bundling.detector_requirements("inline"))
    keys = [chunk_key(kit.source, k) for k in ticked["written"]] + [manifest_key(kit.source)]  # type: ignore[union-attr]
    sweep = json.loads((REPO / "events" / "detector_sweep.json").read_text())
    results = _invoke(detector, runtime, [_put(k) for k in keys] + [sweep], env)
    assert results[-2]["ended"] == [kit.source]
    assert kit.detection_files() == ds.expected()
    migrator = _bundle("migrator", tmp_path / "migrator", bundling.migrator_requirements())
    done = subprocess.run([sys.executable, "-S", "-c",
                           ("import sys; sys.path[:0] = sys.argv[1:3]; import handler; "
                            "print(callable(handler.handler))"), str(migrator), str(runtime)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-3000:]


def test_the_glue_zip_runs_the_job_on_local_spark(tmp_path: Path) -> None:
    """The job script with the zip first on sys.path and site-packages added without its
    .pth files (so the editable install of txnpipe is not found): what Glue 5.0 provides."""
    from tests.functional import glue_local

    libraries = bundling.write_core_zip(tmp_path / "libs.zip")
    probe = f"""
import sys
sys.path[:0] = [{str(libraries)!r}, {sysconfig.get_paths()["purelib"]!r}]
import txnpipe
assert txnpipe.__file__.startswith({str(libraries)!r}), txnpipe.__file__
import importlib.util
spec = importlib.util.spec_from_file_location("job", {str(glue_local.SCRIPT)!r})
job = sys.modules["job"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(job)
print(job.main(sys.argv[1:]))
"""
    ds = dataset()
    data = tmp_path / "bucket"
    from txnpipe.core.csvscan import iter_records

    records = list(iter_records(ds.transactions.read_bytes()))
    header, rows = records[0], records[1:]
    rows_per_chunk = ds.settings.chunk_rows
    for k in range(-(-len(rows) // rows_per_chunk)):
        path = data / "chunks" / "stream" / f"chunk_{k:06d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(header + b"".join(rows[k * rows_per_chunk : (k + 1) * rows_per_chunk]))
    (data / "inputs").mkdir()
    shutil.copy(ds.importance, data / "inputs" / "imp.csv")
    last = -(-len(rows) // rows_per_chunk) - 1
    argv = ["--txnpipe_bucket", "b", "--txnpipe_base_uri", data.as_uri() + "/",
            "--txnpipe_source", "stream", "--txnpipe_importance_key", "inputs/imp.csv",
            "--txnpipe_first", "0", "--txnpipe_last", str(last)]  # fmt: skip
    argv += [a for k, v in ds.settings.as_dict().items() for a in (f"--txnpipe_{k}", str(v))]
    # Spark's Python workers find the zip first too (PYTHONPATH comes before site-packages).
    env = {**os.environ, "PYTHONPATH": str(libraries), "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run([sys.executable, "-S", "-c", probe, *argv], capture_output=True,
                          text=True, check=False, timeout=900, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    written = Path(done.stdout.strip().splitlines()[-1].removeprefix("file:"))
    assert list(written.glob("*.parquet"))
