"""``txnpipe run``: both mechanisms end to end on one machine (SPEC 5).

The chunker runs on its cadence in one thread; S3 notifies an SQS queue of every put
under ``chunks/`` and a second thread hands each notification to the detector exactly as
Lambda would receive it. The run ends when the detector has seen the stream end and
written its last file.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from txnpipe.adapters import pgstore
from txnpipe.adapters.s3store import S3Store
from txnpipe.chunker import RangeReader, TickReport, run_tick
from txnpipe.detector import Detector, DetectorReport
from txnpipe.errors import TxnpipeError
from txnpipe.events import chunk_refs
from txnpipe.inputs import InputFiles
from txnpipe.keys import ChunkRef
from txnpipe.local import services
from txnpipe.local.chaos import Chaos, ChaosReport, InjectedCrash
from txnpipe.local.engines import LocalUpgradeEngine
from txnpipe.ports import no_fault
from txnpipe.settings import Settings

OUTPUT_PREFIXES = ("chunks/", "detections/", "rejects/")


@dataclass(frozen=True)
class RunOptions:
    inputs: InputFiles
    out: Path
    settings: Settings
    fast: bool = False
    database_url: str | None = None
    s3_endpoint: str | None = None
    bucket: str = "txnpipe-local"
    chaos: int | None = None
    upgrade_engine: str = "inline"


@dataclass
class RunSummary:
    source: str
    chunks: int = 0
    records: int = 0
    rejects: int = 0
    detections: dict[str, int] = field(default_factory=dict)
    files: int = 0
    seconds: float = 0.0
    out: Path = Path(".")
    chaos: ChaosReport | None = None


Progress = Callable[[int, int | None], None]
T = TypeVar("T")


def _quiet(done: int, total: int | None) -> None:
    """No progress display."""


class _Failure:
    """The first exception raised in a worker thread, re-raised by the main thread."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def guard(self, fn: Callable[[], None]) -> Callable[[], None]:
        def guarded() -> None:
            try:
                fn()
            except BaseException as exc:  # handed to the main thread, not swallowed
                self.error = self.error or exc
                self.stop.set()

        return guarded


class _Container:
    """A Lambda container's view of the database: one connection, reopened when broken."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = pgstore.connect(self.url)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _retrying(fn: Callable[[], T], stop: threading.Event) -> T:
    """Call ``fn`` until it succeeds, as Lambda retries a failed asynchronous invocation.

    Injected crashes are retried at once; a lost database connection (a restart) after a
    short back-off. Anything else is a real failure and propagates.
    """
    delay = 0.05
    while True:
        try:
            return fn()
        except InjectedCrash:
            continue
        except psycopg.OperationalError:
            if stop.is_set():
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def run(
    opts: RunOptions,
    progress: Progress = _quiet,
) -> RunSummary:
    settings = replace(opts.settings, chunk_interval_seconds=0.0) if opts.fast else opts.settings
    source = opts.inputs.source
    chaos = Chaos(opts.chaos) if opts.chaos is not None else None
    fault = chaos.fault if chaos else no_fault
    started = time.monotonic()
    with ExitStack() as stack:
        db_url = stack.enter_context(services.postgres(opts.database_url))
        endpoint = stack.enter_context(services.s3_endpoint(opts.s3_endpoint))
        s3 = services.client("s3", endpoint)
        sqs = services.client("sqs", endpoint)
        store = S3Store(s3, opts.bucket)
        queue_url = _prepare_bucket(s3, sqs, opts.bucket, source)
        stack.callback(sqs.delete_queue, QueueUrl=queue_url)
        input_key = f"inputs/{opts.inputs.transactions.name}"
        importance_key = f"inputs/{opts.inputs.importance.name}"
        s3.upload_file(str(opts.inputs.transactions), opts.bucket, input_key)
        s3.upload_file(str(opts.inputs.importance), opts.bucket, importance_key)
        with pgstore.connect(db_url) as conn:
            pgstore.reset_source(conn, source)

        failure = _Failure()
        ended = threading.Event()
        applied = threading.Event()
        total_hint = opts.inputs.estimated_chunks(settings.chunk_rows)
        engine = None
        if opts.upgrade_engine != "inline":
            engine = LocalUpgradeEngine(opts.upgrade_engine, store, importance_key, settings)
            stack.callback(engine.close)
        chunker_db, detector_db = _Container(db_url), _Container(db_url)
        stack.callback(chunker_db.close)
        stack.callback(detector_db.close)

        def chunk() -> None:
            reader = RangeReader(store)

            def tick() -> TickReport:
                state = pgstore.PgChunkerState(chunker_db.connection())
                return run_tick(store, state, settings, source, input_key, fault=fault,
                                max_chunks=1, reader=reader)  # fmt: skip

            while not failure.stop.is_set():
                report = _retrying(tick, failure.stop)
                if report.done:
                    return
                if not report.chunks_written:
                    failure.stop.wait(min(0.2, settings.chunk_interval_seconds or 0.01))

        def deliver(refs: list[ChunkRef] | None) -> DetectorReport:
            """One detector invocation: chunk events, or (None) a batch run's completion."""

            def once() -> DetectorReport:
                state = pgstore.PgDetectorState(detector_db.connection())
                detector = Detector(store, state, settings, importance_key, fault=fault,
                                    upgrade_engine=engine)  # fmt: skip
                return detector.handle(refs) if refs is not None else detector.poll_upgrades()

            return _retrying(once, failure.stop)

        def detect() -> None:
            done = 0
            while not failure.stop.is_set() and not ended.is_set():
                messages = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
                events = [chunk_refs(json.loads(m["Body"])) for m in messages]
                if chaos:
                    events = chaos.deliveries(events, final=not messages)
                batches: list[list[ChunkRef] | None]
                batches = events if chaos else [[ref for refs in events for ref in refs]]
                if engine is not None:
                    batches.append(None)  # locally the runner waits for the batch run
                elif not events:
                    continue
                for refs in batches:
                    report = deliver(refs)
                    done += len(report.applied)
                    progress(done, total_hint)
                    if source in report.ended:
                        ended.set()
                if messages:
                    sqs.delete_message_batch(
                        QueueUrl=queue_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(messages)
                        ],
                    )
                if done >= total_hint // 2:
                    applied.set()

        def restart_database() -> None:
            """Chaos: stop and start the embedded server once, half-way through."""
            while not (applied.is_set() or ended.is_set() or failure.stop.is_set()):
                failure.stop.wait(0.1)
            if chaos and not ended.is_set() and services.restart_postgres(db_url):
                chaos.report.restarts += 1

        workers = [(chunk, "chunker"), (detect, "detector")]
        if chaos and opts.database_url is None:
            workers.append((restart_database, "chaos"))
        threads = [
            threading.Thread(target=failure.guard(fn), name=name, daemon=True)
            for fn, name in workers
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failure.error is not None:
            raise failure.error
        conn = detector_db.connection()
        summary = _summarise(conn, source)
        summary.files = _download(store, opts.out)
        _write_run_log(conn, source, opts.out)
    summary.seconds = time.monotonic() - started
    summary.out = opts.out
    summary.chaos = chaos.report if chaos else None
    return summary


def _prepare_bucket(s3: Any, sqs: Any, bucket: str, source: str) -> str:
    """Bucket, a fresh event queue, chunk notifications to it, and no stale outputs."""
    try:
        s3.create_bucket(Bucket=bucket)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    store = S3Store(s3, bucket)
    for prefix in OUTPUT_PREFIXES:
        for key in store.keys(f"{prefix}{source}/"):
            s3.delete_object(Bucket=bucket, Key=key)
    queue_url = sqs.create_queue(QueueName=f"txnpipe-chunks-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "chunks/"}]}},
                }
            ]
        },
    )
    return str(queue_url)


def _download(store: S3Store, out: Path) -> int:
    """Copy the bucket's outputs to ``out`` under the same keys; returns detection files."""
    keys = []
    for prefix in OUTPUT_PREFIXES:
        shutil.rmtree(out / prefix, ignore_errors=True)
        keys += store.keys(prefix)

    def fetch(key: str) -> None:
        target = out / key
        if not target.resolve().is_relative_to(out.resolve()):
            raise TxnpipeError(f"refusing to write {key!r} outside {out}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.get(key))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(fetch, keys))
    return sum(key.startswith("detections/") for key in keys)


def _summarise(conn: Any, source: str) -> RunSummary:
    sid = pgstore.source_id(conn, source)
    row = conn.execute(
        "SELECT count(*), coalesce(sum(records), 0), coalesce(sum(rejects), 0)"
        " FROM txnpipe.chunk_log WHERE source_id = %s",
        (sid,),
    ).fetchone()
    per_pattern = conn.execute(
        "SELECT pattern, count(*) FROM txnpipe.detections WHERE source_id = %s"
        " GROUP BY pattern ORDER BY pattern",
        (sid,),
    ).fetchall()
    return RunSummary(
        source=source,
        chunks=int(row[0]),
        records=int(row[1]),
        rejects=int(row[2]),
        detections={f"PatId{p}": int(n) for p, n in per_pattern},
    )


def _write_run_log(conn: Any, source: str, out: Path) -> None:
    """Per-chunk timings and counts, for ``txnpipe report``."""
    sid = pgstore.source_id(conn, source)
    rows = conn.execute(
        "SELECT chunk, arrived_at, y_start, applied_at, records, rejects, detections"
        " FROM txnpipe.chunk_log WHERE source_id = %s ORDER BY chunk",
        (sid,),
    ).fetchall()
    chunks = [
        {
            "chunk": c,
            "arrived_at": a.isoformat() if a else None,
            "y_start": y.isoformat(),
            "applied_at": d.isoformat(),
            "records": r,
            "rejects": j,
            "detections": n,
        }
        for c, a, y, d, r, j, n in rows
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"source": source, "chunks": chunks}, indent=1))
