"""txnpipe's side of the benchmark, measured through its real code paths.

* ``replay``: ``txnpipe run --fast`` end to end (``runner.run``), then the per-chunk
  detector cost that the detector itself logs (``chunk_log.applied_at - y_start``).
* ``chunker_ticks``: the chunker alone, one ``run_tick(max_chunks=1)`` per chunk, as the
  runner calls it, timed tick by tick (does a tick stay O(chunk) deep into the file?).
* ``scale_detector``: every chunk of a 10x file applied by the detector in a separate,
  freshly spawned process, so its peak RSS is the detector's own and not the parent's
  (which holds moto and the input file).
"""
from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from data import Dataset
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from txnpipe import postgres
from txnpipe.aws.s3store import S3Store
from txnpipe.core.chunker import STREAM_READ_AHEAD, RangeReader, run_tick
from txnpipe.core.detector import Detector
from txnpipe.core.events import chunk_refs
from txnpipe.core.keys import chunk_key, manifest_key, source_name
from txnpipe.core.settings import Settings
from txnpipe.local import services
from txnpipe.local.inputs import InputFiles
from txnpipe.local.runner import RunOptions, run


def say(message: str) -> None:
    """Progress on stdout, flushed: the full bench runs for many minutes, often under nohup."""
    print(message, flush=True)


def database(server_url: str, name: str) -> str:
    """A fresh database on the shared embedded server: each measurement starts from empty
    tables, so one run's history and dead tuples never slow down the next."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    return make_conninfo("", **params)


def settle(db_url: str) -> None:
    """Vacuum and analyze what a measurement wrote, then checkpoint: otherwise autovacuum
    and the checkpointer do that work on the shared server in the middle of the next one."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


@dataclass
class ChunkCosts:
    """Per-chunk detector cost as the detector logged it, in chunk order."""

    seconds: list[float] = field(default_factory=list)
    records: list[int] = field(default_factory=list)


def chunk_costs(db_url: str, source: str) -> ChunkCosts:
    costs = ChunkCosts()
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM l.applied_at - l.y_start)::float8, l.records"
            " FROM txnpipe.chunk_log l JOIN txnpipe.sources s USING (source_id)"
            " WHERE s.name = %s ORDER BY l.chunk",
            (source,),
        ).fetchall()
    for seconds, records in rows:
        costs.seconds.append(seconds)
        costs.records.append(records)
    return costs


@dataclass
class Replay:
    seconds: float
    costs: ChunkCosts
    detections: dict[str, int]
    rejects: int


def replay(db_url: str, data: Dataset, settings: Settings, label: str) -> Replay:
    """``txnpipe run --fast`` on ``data`` (in-process moto, the given database)."""
    every = max(1, 50_000 // settings.chunk_rows)
    mark = every

    def progress(source: str, done: int, total: int | None) -> None:
        nonlocal mark
        if done >= mark:
            say(f"  [{label}] {done}/{total} chunks applied")
            mark = (done // every + 1) * every

    with tempfile.TemporaryDirectory(prefix="txnpipe-bench-out-") as out:
        opts = RunOptions(
            inputs=InputFiles.check(data.transactions, data.importance),
            out=Path(out),
            settings=settings,
            fast=True,
            database_url=db_url,
        )
        summary = run(opts, progress=progress)
    source = summary.streams[0].source
    return Replay(summary.seconds, chunk_costs(db_url, source), summary.detections,
                  summary.rejects)  # fmt: skip


def upload(endpoint: str, bucket: str, *paths: Path) -> S3Store:
    s3 = services.client("s3", endpoint)
    try:
        s3.create_bucket(Bucket=bucket)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    for path in paths:
        s3.upload_file(str(path), bucket, f"inputs/{path.name}")
    return S3Store(s3, bucket)


def chunker_ticks(
    db_url: str, endpoint: str, data: Dataset, settings: Settings,
    on_tick: Callable[[int, float], None] = lambda k, s: None,
) -> list[float]:  # fmt: skip
    """Seconds of each tick that wrote chunk k, index k: the chunker alone, as the runner
    drives it (one chunk per tick, no pacing, one RangeReader kept across ticks)."""
    settings = replace(settings, chunk_interval_seconds=0.0)
    store = upload(endpoint, "bench-chunker", data.transactions)
    source, key = source_name(data.transactions.name), f"inputs/{data.transactions.name}"
    ticks: list[float] = []
    with postgres.connect(db_url) as conn:
        postgres.reset_source(conn, source)
        state = postgres.PgChunkerState(conn)
        reader = RangeReader(store, STREAM_READ_AHEAD)
        while True:
            started = time.perf_counter()
            report = run_tick(store, state, settings, source, key, max_chunks=1, reader=reader)
            seconds = time.perf_counter() - started
            if report.chunks_written:
                ticks.append(seconds)
                on_tick(report.chunks_written[0], seconds)
            if report.done:
                return ticks


def write_all_chunks(db_url: str, store: S3Store, data: Dataset, settings: Settings) -> int:
    """Mechanism X over the whole file at once (no pacing); returns the number of chunks."""
    settings = replace(settings, chunk_interval_seconds=0.0)
    source, key = source_name(data.transactions.name), f"inputs/{data.transactions.name}"
    with postgres.connect(db_url) as conn:
        postgres.reset_source(conn, source)
        state = postgres.PgChunkerState(conn)
        reader = RangeReader(store, STREAM_READ_AHEAD)
        while not run_tick(store, state, settings, source, key, reader=reader).done:
            pass
        pointer = state.load(source)
        assert pointer is not None
        return pointer.next_chunk


@dataclass(frozen=True)
class DetectJob:
    db_url: str
    endpoint: str
    bucket: str
    source: str
    importance_key: str
    chunks: int
    settings: Settings
    keys_per_event: int = 100  # a backlog: the chunks an invocation finds landed


@dataclass
class DetectResult:
    seconds: float
    costs: ChunkCosts
    peak_rss_mb: float  # ru_maxrss
    hwm_rss_mb: float  # VmHWM: this address space's own peak, a cross-check of ru_maxrss
    rss_after_first_event_mb: float
    rss_end_mb: float
    hwm_after_first_event_mb: float  # the peak so far once the weights are loaded
    cpu_seconds: float  # this process's user + system time over the backlog
    postgres_cpu_seconds: float  # its two PostgreSQL backends' (apply, staging)


def _status_mb(field: str) -> float:
    """A memory line of /proc/self/status (VmRSS now, VmHWM peak), in MiB."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def cpu_seconds(pid: int | None = None) -> float:
    """User + system seconds of a process so far (this one by default): ``/proc/PID/stat``
    fields 14 and 15, counted after the command name, which may hold spaces."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _s3_event(bucket: str, keys: list[str]) -> dict[str, Any]:
    """An S3 ObjectCreated:Put notification carrying several keys, as Lambda receives it."""
    return {"Records": [{"eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": bucket}, "object": {"key": k}}}
                        for k in keys]}  # fmt: skip


def detect_all(job: DetectJob) -> DetectResult:
    """Run in the child: deliver every chunk's event, ``keys_per_event`` keys per event."""
    store = S3Store(services.client("s3", job.endpoint), job.bucket)
    keys = [chunk_key(job.source, k) for k in range(job.chunks)] + [manifest_key(job.source)]
    started = time.perf_counter()
    first_rss = first_hwm = 0.0
    with postgres.connect(job.db_url) as conn, postgres.connect(job.db_url) as staging:
        backends = (conn.info.backend_pid, staging.info.backend_pid)
        cpu, pg_cpu = cpu_seconds(), sum(map(cpu_seconds, backends))
        state = postgres.PgDetectorState(conn, staging=lambda: staging)
        detector = Detector(store, state, job.settings, job.importance_key)
        for i in range(0, len(keys), job.keys_per_event):
            detector.handle(chunk_refs(_s3_event(job.bucket, keys[i : i + job.keys_per_event])))
            if i == 0:
                first_rss, first_hwm = _status_mb("VmRSS"), _status_mb("VmHWM")
            if (i // job.keys_per_event + 1) % max(1, 500 // job.keys_per_event) == 0:
                say(f"  [scale detector] {i + job.keys_per_event}/{job.chunks} chunks,"
                    f" rss {_status_mb('VmRSS'):.0f} MB")  # fmt: skip
        cpu, pg_cpu = cpu_seconds() - cpu, sum(map(cpu_seconds, backends)) - pg_cpu
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return DetectResult(seconds, chunk_costs(job.db_url, job.source), peak,
                        _status_mb("VmHWM"), first_rss, _status_mb("VmRSS"), first_hwm, cpu,
                        pg_cpu)  # fmt: skip


def detector_process() -> ProcessPoolExecutor:
    """The process the scale run's detector will run in, started NOW, while this one is small.

    Linux carries the parent's RSS high-water mark across fork and exec into the child's
    ``ru_maxrss``; spawned later, when this process holds moto's objects and the baseline's
    data, the child would report our peak instead of its own. Spawning (not forking) keeps
    the child's own memory a bare interpreter plus the detector.
    """
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(os.getpid).result()
    return pool


def detection_set(db_url: str, source: str) -> set[tuple[int, int, str, str]]:
    """(chunk, pattern, merchant, customer) of every detection, to compare with the baseline."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT d.chunk, d.pattern, d.merchant, d.customer FROM txnpipe.detections d"
            " JOIN txnpipe.sources s USING (source_id) WHERE s.name = %s",
            (source,),
        ).fetchall()
    return {tuple(r) for r in rows}  # type: ignore[misc]
