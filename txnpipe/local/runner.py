"""``txnpipe run``: both mechanisms end to end on one machine (SPEC 5).

The chunker runs on its cadence in one thread; S3 notifies an SQS queue of every put
under ``chunks/`` and a second thread hands each notification to the detector exactly as
Lambda would receive it. The run ends when the detector has seen the stream end and
written its last file.
"""
from __future__ import annotations

import hashlib
import json
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from txnpipe.adapters import pgstore
from txnpipe.adapters.s3store import S3Store
from txnpipe.chunker import STREAM_READ_AHEAD, RangeReader, TickReport, run_tick
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
_POLL_PAUSE = 0.2  # seconds


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
    pg_data: Path | None = None  # keep the embedded server's data here


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


@dataclass
class _Stream:
    """The two mechanisms of one local run, each on its own thread, sharing a stop flag."""

    source: str
    input_key: str
    importance_key: str
    settings: Settings
    store: S3Store
    sqs: Any
    queue_url: str
    db_url: str
    engine: LocalUpgradeEngine | None
    chaos: Chaos | None
    progress: Progress
    failure: _Failure = field(default_factory=_Failure)
    ended: threading.Event = field(default_factory=threading.Event)
    inbox: queue.Queue[list[ChunkRef]] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.fault = self.chaos.fault if self.chaos else no_fault
        self.chunker_db = _Container(self.db_url)
        self.detector_db = _Container(self.db_url)
        self.staging_db = _Container(self.db_url)
        self.total_hint = 1

    def run(self, total_hint: int) -> None:
        self.total_hint = total_hint
        threads = [
            threading.Thread(target=self.failure.guard(fn), name=fn.__name__, daemon=True)
            for fn in (self.chunker, self.receiver, self.detector)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.chunker_db.close()
        if self.failure.error is not None:
            raise self.failure.error

    def chunker(self) -> None:
        """Mechanism X on its cadence: a tick whenever a chunk falls due."""
        reader = RangeReader(self.store, STREAM_READ_AHEAD)

        def tick() -> TickReport:
            state = pgstore.PgChunkerState(self.chunker_db.connection())
            return run_tick(self.store, state, self.settings, self.source, self.input_key,
                            fault=self.fault, max_chunks=1, reader=reader)  # fmt: skip

        stop = self.failure.stop
        written = 0
        while not stop.is_set():
            report = _retrying(tick, stop)
            if report.done:
                return
            written += len(report.chunks_written)
            if self.chaos and written == self.total_hint // 2:
                # Half-way through the stream, so both mechanisms lose their connections.
                self.chaos.report.restarts += services.restart_postgres(self.db_url)
            if not report.chunks_written:
                stop.wait(min(0.2, self.settings.chunk_interval_seconds or 0.01))

    def receiver(self) -> None:
        """S3's notifications, taken off the queue at once as Lambda's async queue would.

        Deleting on receipt keeps the SQS queue short (moto's cost per message grows with
        the queue); the events wait in ``inbox`` for the detector instead.
        """
        while not self.failure.stop.is_set() and not self.ended.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:  # short polls, so that the run ends as soon as the stream does
                self.ended.wait(_POLL_PAUSE)
                continue
            if len(messages) < 10:
                # Let a few more land before the next poll: each request costs moto several
                # milliseconds of this process's time, and an event waits at most this long.
                self.failure.stop.wait(_POLL_PAUSE)
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                       for i, m in enumerate(messages)]  # fmt: skip
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for m in messages:
                self.inbox.put(chunk_refs(json.loads(m["Body"])))

    def detector(self) -> None:
        """Mechanism Y: every event that came in since its last invocation, handed over."""
        done = 0
        while not self.failure.stop.is_set() and not self.ended.is_set():
            events = self._take(timeout=0.5)
            if self.chaos:
                events = self.chaos.deliveries(events, final=not events)
            batches: list[list[ChunkRef] | None]
            batches = events if self.chaos else [[ref for refs in events for ref in refs]]
            if self.engine is not None:
                batches.append(None)  # locally the runner waits for the batch run
            elif not events:
                continue
            for refs in batches:
                report = self._invoke(refs)
                done += len(report.applied)
                self.progress(done, self.total_hint)
                if self.source in report.ended:
                    self.ended.set()

    def _take(self, timeout: float) -> list[list[ChunkRef]]:
        """Whatever events are waiting (after up to ``timeout`` for the first one)."""
        try:
            events = [self.inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                events.append(self.inbox.get_nowait())
            except queue.Empty:
                return events

    def prepare(self) -> None:
        """The detector's weights, loaded before the first chunk lands."""
        _retrying(lambda: self._detector().prepare(self.source), self.failure.stop)

    def _invoke(self, refs: list[ChunkRef] | None) -> DetectorReport:
        """One detector invocation: chunk events, or (None) a batch run's completion."""

        def once() -> DetectorReport:
            detector = self._detector()
            return detector.handle(refs) if refs is not None else detector.poll_upgrades()

        return _retrying(once, self.failure.stop)

    def _detector(self) -> Detector:
        state = pgstore.PgDetectorState(self.detector_db.connection(),
                                        staging=self.staging_db.connection)  # fmt: skip
        return Detector(self.store, state, self.settings, self.importance_key,
                        fault=self.fault, upgrade_engine=self.engine)  # fmt: skip


def run(opts: RunOptions, progress: Progress = _quiet) -> RunSummary:
    settings = replace(opts.settings, chunk_interval_seconds=0.0) if opts.fast else opts.settings
    source = opts.inputs.source
    started = time.monotonic()
    with ExitStack() as stack:
        db_url = stack.enter_context(services.postgres(opts.database_url, opts.pg_data))
        endpoint = stack.enter_context(services.s3_endpoint(opts.s3_endpoint))
        s3 = services.client("s3", endpoint)
        sqs = services.client("sqs", endpoint)
        store = _CopyingStore(s3, opts.bucket, opts.out)
        queue_url = _prepare_bucket(s3, sqs, opts.bucket, source)
        stack.callback(sqs.delete_queue, QueueUrl=queue_url)
        input_key = f"inputs/{opts.inputs.transactions.name}"
        importance_key = f"inputs/{opts.inputs.importance.name}"
        with pgstore.connect(db_url) as conn:
            pgstore.reset_source(conn, source)
        s3.upload_file(str(opts.inputs.importance), opts.bucket, importance_key)
        engine = None
        if opts.upgrade_engine != "inline":
            engine = LocalUpgradeEngine(opts.upgrade_engine, store, importance_key, settings)
            stack.callback(engine.close)
        chaos = Chaos(opts.chaos) if opts.chaos is not None else None
        _clear_outputs(opts.out)
        stream = _Stream(source, input_key, importance_key, settings, store, sqs, queue_url,
                         db_url, engine, chaos, progress)  # fmt: skip
        stack.callback(stream.detector_db.close)
        stack.callback(stream.staging_db.close)
        with ThreadPoolExecutor(max_workers=1) as pool:  # the weights load while it uploads
            prepared = pool.submit(stream.prepare)
            s3.upload_file(str(opts.inputs.transactions), opts.bucket, input_key)
            prepared.result()
        stream.run(opts.inputs.estimated_chunks(settings.chunk_rows))
        with pgstore.connect(db_url) as conn:
            summary = _summarise(conn, source)
            _write_run_log(conn, source, opts.out)
        summary.files = _download(store, opts.out)
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
    stale = [key for prefix in OUTPUT_PREFIXES for key in store.keys(f"{prefix}{source}/")]
    for i in range(0, len(stale), 1000):  # one request per 1,000 keys
        objects = [{"Key": key} for key in stale[i : i + 1000]]
        failed = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        if failed.get("Errors"):
            raise TxnpipeError(f"cannot clear the last run's outputs: {failed['Errors'][0]}")
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


@dataclass(frozen=True)
class _CopyingStore(S3Store):
    """The bucket, with every output written to ``out`` as well as it is put: copying the
    outputs at the end would GET each again (``_download`` then only checks them)."""

    out: Path = Path(".")

    def put(self, key: str, data: bytes) -> None:
        super().put(key, data)
        if key.startswith(OUTPUT_PREFIXES):
            _write(self.out, key, data)


def _clear_outputs(out: Path) -> None:
    for prefix in OUTPUT_PREFIXES:
        shutil.rmtree(out / prefix, ignore_errors=True)


def _write(out: Path, key: str, data: bytes) -> None:
    target = out / key
    if not target.resolve().is_relative_to(out.resolve()):
        raise TxnpipeError(f"refusing to write {key!r} outside {out}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _download(store: S3Store, out: Path) -> int:
    """Copy the bucket's outputs to ``out`` under the same keys; returns detection files.

    A file copied as it was put is fetched again only if its MD5 is not the object's
    ETag, so what is left in ``out`` is exactly what the bucket holds.
    """
    listed = {key: etag for prefix in OUTPUT_PREFIXES for key, etag in store.etags(prefix).items()}
    missing = [key for key, etag in listed.items() if not _holds(out / key, etag)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: _write(out, key, store.get(key)), missing))
    return sum(key.startswith("detections/") for key in listed)


def _holds(path: Path, etag: str) -> bool:
    return path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() == etag


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
