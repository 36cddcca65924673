"""``txnpipe run`` under faults between processes (issue 14; SPEC 5): a second run on a live
source, two runs on one bucket, a database that goes away, signals, and the embedded server
that must never outlive its run. Each runs ``txnpipe`` as its own process."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import detection_files
from tests.functional.datasets import Dataset, dataset
from tests.functional.txnpipe_process import (
    call,
    files_under,
    finish,
    kill,
    one_line_error,
    postgres_serving,
    postmaster_pid,
    run_args,
    start,
    wait_for,
)
from txnpipe.local import services
from txnpipe.local.embedded_pg import _binaries, _system_user


def _sets(ds: Dataset) -> list[str]:
    return [a for k, v in ds.settings.as_dict().items() for a in ("--set", f"{k}={v}")]


def _applied(database_url: str) -> int:
    try:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM txnpipe.chunk_log").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def _copy_as(ds: Dataset, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(ds.transactions, folder / name))


def _first_run(tmp_path: Path, database_url: str, *shared: str) -> subprocess.Popen[str]:
    """A paced run, once it has applied a few chunks."""
    ds = dataset()
    first = start(*run_args(ds.transactions, ds.importance, tmp_path / "a", "--interval", "0.25",
                            *shared, *_sets(ds)))  # fmt: skip
    wait_for(lambda: _applied(database_url) >= 2, what="the first run to apply chunks")
    return first


def test_a_second_run_on_a_live_source_is_refused_and_changes_nothing(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    shared = ["--database-url", database_url, "--s3-endpoint", s3_endpoint, "--bucket", bucket]
    first = _first_run(tmp_path, database_url, *shared)
    began = time.monotonic()
    second = call(*run_args(ds.transactions, ds.importance, tmp_path / "b", "--fast", *shared,
                            *_sets(ds)))  # fmt: skip
    assert second.returncode == 2 and time.monotonic() - began < 20
    error = one_line_error(second.stderr)
    assert "'bs140513_032310'" in error and f"pid {first.pid}" in error
    assert not (tmp_path / "b").exists()
    done = finish(first)
    assert done.returncode == 0, done.stderr
    assert detection_files(tmp_path / "a", "bs140513_032310") == ds.expected()


def test_a_run_whose_holder_was_killed_takes_over(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    shared = ["--database-url", database_url, "--s3-endpoint", s3_endpoint, "--bucket", bucket]
    first = _first_run(tmp_path, database_url, *shared)
    first.kill()
    first.wait()
    second = call(*run_args(ds.transactions, ds.importance, tmp_path / "b", "--fast", *shared,
                            *_sets(ds)))  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert detection_files(tmp_path / "b", "bs140513_032310") == ds.expected()


def test_two_runs_on_one_bucket_each_get_their_own_events(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """Notifications are added to the bucket's configuration, never replaced."""
    ds = dataset()
    shared = ["--database-url", database_url, "--s3-endpoint", s3_endpoint, "--bucket", bucket,
              "--interval", "0.2", *_sets(ds)]  # fmt: skip
    runs = {}
    for name in ("alpha", "beta"):
        transactions = _copy_as(ds, tmp_path / name, f"{name}.csv")
        runs[name] = start(*run_args(transactions, ds.importance, tmp_path / f"out-{name}", *shared))
    for name, process in runs.items():
        done = finish(process)
        assert done.returncode == 0, done.stderr
        assert detection_files(tmp_path / f"out-{name}", name) == ds.expected()
    s3 = services.client("s3", s3_endpoint)
    left = s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations", [])
    assert left == []  # each run took its own entries out again


def test_a_database_that_does_not_come_back_fails_the_run_and_a_rerun_finishes(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    pg_data = tmp_path / "pgdata"
    args = run_args(ds.transactions, ds.importance, tmp_path / "out", "--pg-data", pg_data,
                    "--s3-endpoint", s3_endpoint, "--bucket", bucket, *_sets(ds))  # fmt: skip
    run = start(*args, "--interval", "0.3", "--db-wait", "3")
    chunks = tmp_path / "out" / "chunks" / "bs140513_032310"
    wait_for(lambda: files_under(chunks, "chunk_*.csv") >= 3, what="chunks to be written")
    postmaster = postmaster_pid(pg_data)
    assert postmaster is not None
    kill(postmaster)
    killed = time.monotonic()
    failed = finish(run, 60)
    assert failed.returncode == 1 and time.monotonic() - killed < 40
    error = one_line_error(failed.stderr)
    assert "lost the database" in error and "3 s" in error
    assert postgres_serving(pg_data) == []
    again = call(*args, "--fast")
    assert again.returncode == 0, again.stderr
    assert detection_files(tmp_path / "out", "bs140513_032310") == ds.expected()
    assert postgres_serving(pg_data) == []


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_and_its_embedded_server(
    tmp_path: Path, s3_endpoint: str, bucket: str, sig: int, code: int
) -> None:
    ds = dataset()
    pg_data = tmp_path / "pgdata"
    run = start(*run_args(ds.transactions, ds.importance, tmp_path / "out", "--pg-data", pg_data,
                          "--s3-endpoint", s3_endpoint, "--bucket", bucket, "--interval", "0.3",
                          *_sets(ds)))  # fmt: skip
    chunks = tmp_path / "out" / "chunks" / "bs140513_032310"
    wait_for(lambda: files_under(chunks, "chunk_*.csv") >= 2, what="chunks to be written")
    assert postgres_serving(pg_data)
    run.send_signal(sig)
    stopped = finish(run, 60)
    assert stopped.returncode == code, stopped.stderr
    assert postgres_serving(pg_data) == []


def test_a_killed_run_leaves_no_server_behind(tmp_path: Path, s3_endpoint: str, bucket: str) -> None:
    ds = dataset()
    pg_data = tmp_path / "pgdata"
    run = start(*run_args(ds.transactions, ds.importance, tmp_path / "out", "--pg-data", pg_data,
                          "--s3-endpoint", s3_endpoint, "--bucket", bucket, "--interval", "0.3",
                          *_sets(ds)))  # fmt: skip
    wait_for(lambda: bool(postgres_serving(pg_data)), what="the embedded server")
    run.kill()
    run.wait()
    wait_for(lambda: postgres_serving(pg_data) == [], timeout=30, what="the server to stop")


def test_a_server_left_on_the_data_directory_is_stopped_by_the_next_run(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    """A server that outlived its run (started by an older txnpipe, say) is found by
    postmaster.pid and stopped; a directory a live run owns is refused."""
    ds = dataset()
    pg_data = tmp_path / "pgdata"
    args = run_args(ds.transactions, ds.importance, tmp_path / "out", "--pg-data", pg_data,
                    "--s3-endpoint", s3_endpoint, "--bucket", bucket, *_sets(ds))  # fmt: skip
    assert call(*args, "--fast").returncode == 0
    socket_dir = tmp_path / "sock"
    socket_dir.mkdir()
    user = _system_user()
    if user is not None:
        shutil.chown(socket_dir, user)
    subprocess.run([str(_binaries() / "pg_ctl"), "-D", str(pg_data), "-o", f"-h '' -k {socket_dir}",
                    "-l", str(pg_data / "leftover.log"), "-w", "start"],
                   user=user, check=True, capture_output=True)  # fmt: skip
    leftover = postmaster_pid(pg_data)
    assert leftover is not None and postgres_serving(pg_data) == [leftover]
    live = start(*args, "--interval", "0.3")
    wait_for(lambda: postmaster_pid(pg_data) not in (None, leftover)
             and bool(postgres_serving(pg_data)), what="the run's own server")  # fmt: skip
    assert leftover not in postgres_serving(pg_data)
    busy = call(*run_args(ds.transactions, ds.importance, tmp_path / "other", "--pg-data",
                          pg_data, "--fast", *_sets(ds)))  # fmt: skip
    assert busy.returncode == 2 and "in use by another txnpipe process" in one_line_error(busy.stderr)
    status = call("status", "--pg-data", pg_data, "--json")  # reads the live run's server
    assert status.returncode == 0 and json.loads(status.stdout)["sources"], status.stderr
    done = finish(live)
    assert done.returncode == 0, done.stderr
    assert detection_files(tmp_path / "out", "bs140513_032310") == ds.expected()
    assert postgres_serving(pg_data) == []


def test_skipped_importance_rows_are_reported(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    importance = tmp_path / "imp.csv"
    good = ds.importance.read_bytes()
    rows = good.count(b"\n") - 1
    importance.write_bytes(good + b"'C1','M1',1e308,'x',0\n'C2','M1'\n'','M1',1,'x',0\n")
    done = call(*run_args(ds.transactions, importance, tmp_path / "out", "--fast",
                          "--database-url", database_url, "--s3-endpoint", s3_endpoint,
                          "--bucket", bucket, *_sets(ds)))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "importance rows skipped" in done.stdout
    log = json.loads((tmp_path / "out" / "run.json").read_text())
    (stream,) = log["streams"]
    skipped = stream["importance"]["skipped"]
    assert skipped >= 3 and stream["importance"]["rows"] == rows + 3
    status = call("status", "--database-url", database_url, "--json")
    (source,) = json.loads(status.stdout)["sources"]
    assert (source["importance_rows"], source["importance_skipped"]) == (rows + 3, skipped)
