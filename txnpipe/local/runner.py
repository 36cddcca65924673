"""``txnpipe run``: both mechanisms end to end on one machine (SPEC 5).

Every check that can fail is made before any work (a one-line error, exit 2, nothing
deleted): the output folder, the database, the S3 endpoint, and the hold on the run's
sources in that database (a second run on a live source is refused). Then one thread runs
the chunker over every stream on its cadence, S3 notifies an SQS queue of each put under
the run's ``chunks/<source>/`` prefixes, a second thread takes those notifications off the
queue, and a third hands them to the detector exactly as Lambda would, and sweeps when no
event comes (a lost event costs a few seconds). The run ends when every stream has ended
and its last file is written.
"""
from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from txnpipe import postgres
from txnpipe.core.chunker import STREAM_READ_AHEAD, RangeReader, TickReport, tick_streams
from txnpipe.core.detector import Detector, DetectorReport
from txnpipe.core.errors import RunFailed, TxnpipeError, one_line
from txnpipe.core.events import chunk_refs
from txnpipe.core.keys import ChunkRef
from txnpipe.core.ports import no_fault
from txnpipe.core.settings import Settings
from txnpipe.core.streams import InputPrefixes, register_input
from txnpipe.local import notifications, preflight, services
from txnpipe.local.bucket import CopyingStore, download, prepare_bucket
from txnpipe.local.chaos import Chaos, InjectedCrash
from txnpipe.local.engines import LocalUpgradeEngine
from txnpipe.local.inputs import InputFiles, StreamInput
from txnpipe.local.preflight import DB_WAIT_SECONDS
from txnpipe.local.run_log import RunSummary, stream_inputs, stream_record, write_run_log
from txnpipe.postgres import lease as pglease

_POLL_PAUSE = 0.2  # seconds
_LEAD_PAUSE = 0.05  # seconds a chunker far ahead of its detector waits
SWEEP_IDLE = 1.0  # seconds without an event before the detector sweeps
SWEEP_EVERY = 3.0  # and at least this often while the run lasts
# chunks a --fast chunker may have written that the detector has not applied: the rest of
# the stream waits in its input, not in the in-process bucket's memory
FAST_LEAD = 200


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
    db_wait_seconds: float = DB_WAIT_SECONDS


Progress = Callable[[str, int, int | None], None]  # source, chunks applied, chunks expected
T = TypeVar("T")


def _quiet(source: str, done: int, total: int | None) -> None:
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
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, not swallowed
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
            self._conn = postgres.connect(self.url)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _retrying(fn: Callable[[], T], stop: threading.Event, patience: float) -> T:
    """Call ``fn`` until it succeeds, as Lambda retries a failed asynchronous invocation.

    Injected crashes are retried at once; a lost database connection after a back-off that
    doubles up to 2 s, for ``patience`` seconds of failures in a row (SPEC 5), after which
    the run fails with the last error. Anything else is a real failure and propagates.
    """
    delay, since = 0.05, None
    while True:
        try:
            return fn()
        except InjectedCrash:
            continue
        except psycopg.OperationalError as exc:
            now = time.monotonic()
            since = since if since is not None else now
            if stop.is_set():
                raise
            if now - since >= patience:
                raise RunFailed(f"lost the database, and it was not back within "
                                f"{patience:.0f} s ({one_line(exc)})") from None  # fmt: skip
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


@dataclass
class _Stream:
    """One transactions file's stream: its input key and the chunker's reader."""

    input: StreamInput
    input_key: str
    reader: RangeReader
    total_hint: int
    done: bool = False  # the chunker wrote its manifest
    written: int = 0  # chunks the chunker wrote in this run
    applied: int = 0  # chunks the detector is known to have applied (its pointer)

    @property
    def source(self) -> str:
        return self.input.source


@dataclass
class _Run:
    """The two mechanisms of one local run, each on its own thread, sharing a stop flag."""

    streams: list[_Stream]
    settings: Settings
    store: CopyingStore
    sqs: Any
    queue_url: str
    db_url: str
    lease: pglease.RunLease
    engine: LocalUpgradeEngine | None
    chaos: Chaos | None
    progress: Progress
    patience: float
    failure: _Failure = field(default_factory=_Failure)
    inbox: queue.Queue[list[ChunkRef]] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.fault = self.chaos.fault if self.chaos else no_fault
        self.sources = {s.source for s in self.streams}
        self.ended: set[str] = set()
        self.failed: dict[str, str] = {}  # source -> why its stream failed
        self.all_ended = threading.Event()
        self.chunker_db = _Container(self.db_url)
        self.detector_db = _Container(self.db_url)
        self.staging_db = _Container(self.db_url)

    def retrying(self, fn: Callable[[], T]) -> T:
        return _retrying(fn, self.failure.stop, self.patience)

    def run(self) -> None:
        threads = [
            threading.Thread(target=self.failure.guard(fn), name=fn.__name__, daemon=True)
            for fn in (self.chunker, self.receiver, self.detector)
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        finally:  # also on SIGINT or SIGTERM in the main thread: stop the workers first
            self.failure.stop.set()
            for t in threads:
                t.join(timeout=10)
            for container in (self.chunker_db, self.detector_db, self.staging_db):
                container.close()
        if self.failure.error is not None:
            raise self.failure.error

    def chunker(self) -> None:
        """Mechanism X on its cadence: one tick over this run's streams whenever a chunk
        falls due, each stream's next chunk at most, so that none waits for another."""
        stop = self.failure.stop
        written = 0
        total = sum(s.total_hint for s in self.streams)
        while not stop.is_set():
            pending = [s for s in self.streams if not s.done]
            if not pending:
                return
            pending = [s for s in pending if not self._far_ahead(s)]
            if not pending:
                stop.wait(_LEAD_PAUSE)
                continue
            reports = self.retrying(lambda p=pending: self._tick(p))  # type: ignore[misc]
            for report in reports:
                stream = next(s for s in pending if s.source == report.source)
                stream.done = report.done or report.failed is not None
                stream.written += len(report.chunks_written)
                written += len(report.chunks_written)
                if report.failed is not None:
                    self.failed[report.source] = report.failed
                    self._end(report.source)
            if self.chaos and any(r.chunks_written for r in reports) and written >= total // 2 > 0:
                # Half-way through the run, so both mechanisms lose their connections.
                self.chaos.report.restarts += services.restart_postgres(self.db_url)
                total = 0
            if not any(r.chunks_written for r in reports):
                stop.wait(min(0.2, self.settings.chunk_interval_seconds or 0.01))

    def _far_ahead(self, stream: _Stream) -> bool:
        """A --fast stream whose chunker is ``FAST_LEAD`` chunks ahead of its detector. The
        detector's reports may miss chunks (a retried invocation reports only what it applied
        itself), so the lead is checked against the database before the chunker waits."""
        if self.settings.chunk_interval_seconds > 0 or stream.written - stream.applied < FAST_LEAD:
            return False
        progress = self.retrying(
            lambda: postgres.PgDetectorState(self.chunker_db.connection()).progress_of(stream.source)
        )
        stream.applied = max(stream.applied, progress.next_chunk if progress is not None else 0)
        return stream.written - stream.applied >= FAST_LEAD

    def _tick(self, streams: list[_Stream]) -> list[TickReport]:
        self.lease.check()
        conn = self.chunker_db.connection()
        return tick_streams(self.store, postgres.PgChunkerState(conn),
                            postgres.PgStreamRegistry(conn), self.settings,
                            sources=[s.source for s in streams], fault=self.fault, max_chunks=1,
                            readers={s.source: s.reader for s in streams})  # fmt: skip

    def receiver(self) -> None:
        """S3's notifications, taken off the queue at once as Lambda's async queue would.

        Deleting on receipt keeps the SQS queue short (moto's cost per message grows with
        the queue); the events wait in ``inbox`` for the detector instead. Only this run's
        sources are handed on; with chaos, each event is duplicated, delayed or lost here,
        as it arrives, whatever the detector's pace.
        """
        while not self.failure.stop.is_set() and not self.all_ended.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:  # short polls, so that the run ends as soon as the stream does
                if self.chaos and self.chaos.holding:  # delayed events, delivered at last
                    self._hand_on(self.chaos.deliveries([], final=True))
                self.all_ended.wait(_POLL_PAUSE)
                continue
            if len(messages) < 10:
                # Let a few more land before the next poll: each request costs moto several
                # milliseconds of this process's time, and an event waits at most this long.
                self.failure.stop.wait(_POLL_PAUSE)
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                       for i, m in enumerate(messages)]  # fmt: skip
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            events = [[r for r in chunk_refs(json.loads(m["Body"])) if r.source in self.sources]
                      for m in messages]  # fmt: skip
            events = [refs for refs in events if refs]
            self._hand_on(self.chaos.deliveries(events) if self.chaos else events)

    def _hand_on(self, events: list[list[ChunkRef]]) -> None:
        for refs in events:
            self.inbox.put(refs)

    def detector(self) -> None:
        """Mechanism Y: every event that came in since its last invocation, handed over; a
        sweep when none came for a while (or the last sweep is old), as the deployed
        detector's schedule does, so that a lost event or state change stalls nothing."""
        self.prepare()
        last_event = last_sweep = time.monotonic()
        while not self.failure.stop.is_set() and not self.all_ended.is_set():
            events = self._take(timeout=0.5)
            batches: list[list[ChunkRef]]
            batches = events if self.chaos else [[ref for refs in events for ref in refs]]
            for refs in batches:
                if refs:
                    self._report(self.retrying(lambda r=refs: self._detector().handle(r)))  # type: ignore[misc]
            now = time.monotonic()
            last_event = now if events else last_event
            if self.engine is not None and not (self.chaos and self.chaos.lose_poll()):
                # locally the runner polls a batch run, where Glue sends a state change
                self._report(self.retrying(lambda: self._detector().poll_upgrades()))
            if now - last_event >= SWEEP_IDLE or now - last_sweep >= SWEEP_EVERY:
                live = sorted(self.sources - self.ended)
                self._report(self.retrying(lambda live=live: self._detector().sweep(live)))  # type: ignore[misc]
                last_sweep = now

    def _report(self, report: DetectorReport) -> None:
        for source, chunk in report.applied:
            self.store.applied(source, chunk)
            stream = next(s for s in self.streams if s.source == source)
            stream.applied = max(stream.applied, chunk + 1)
        for stream in self.streams:
            if report.applied or stream.source in report.ended:
                self.progress(stream.source, stream.applied, stream.total_hint)
        for source in report.ended & self.sources:
            self._end(source)

    def _end(self, source: str) -> None:
        self.ended.add(source)
        if self.ended == self.sources:
            self.all_ended.set()

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
        """The detector's weights, loaded while the chunker starts: a second of the run's
        start (220,000 importance rows) that the chunks no longer wait for."""
        detector = self._detector()
        for source in sorted(self.sources):
            self.retrying(lambda s=source: detector.prepare(s))  # type: ignore[misc]

    def _detector(self) -> Detector:
        state = postgres.PgDetectorState(self.detector_db.connection(),
                                        staging=self.staging_db.connection)  # fmt: skip
        return Detector(self.store, state, self.settings, fault=self.fault,
                        upgrade_engine=self.engine)  # fmt: skip


def run(opts: RunOptions, progress: Progress = _quiet) -> RunSummary:
    settings = replace(opts.settings, chunk_interval_seconds=0.0) if opts.fast else opts.settings
    sources = opts.inputs.sources
    started = time.monotonic()
    preflight.check_bucket(opts.bucket)
    created_out = preflight.prepare_out(opts.out, opts.inputs)
    with ExitStack() as stack:
        try:
            db_url, endpoint = stack.enter_context(services.started(
                opts.database_url, opts.pg_data, opts.s3_endpoint, opts.bucket))  # fmt: skip
            holder = f"txnpipe run pid {os.getpid()} on {socket.gethostname()}"
            lease = stack.enter_context(pglease.held(db_url, sources, holder))
        except TxnpipeError:
            if created_out:
                preflight.remove_if_empty(opts.out)
            raise
        # Nothing was changed before this point; from here on the run's work begins.
        try:
            summary = _run(opts, settings, stack, db_url, endpoint, lease, progress)
        except (BotoCoreError, ClientError) as exc:
            raise RunFailed(f"lost the S3 endpoint: {exc}") from None
        except psycopg.OperationalError as exc:
            raise RunFailed(f"lost the database: {one_line(exc)}") from None
    summary.seconds = time.monotonic() - started
    summary.out = opts.out
    return summary


def _run(opts: RunOptions, settings: Settings, stack: ExitStack, db_url: str, endpoint: str,
         lease: pglease.RunLease, progress: Progress) -> RunSummary:  # fmt: skip
    sources = opts.inputs.sources
    s3 = services.client("s3", endpoint)
    sqs = services.client("sqs", endpoint)
    own = opts.s3_endpoint is None
    store = CopyingStore(s3, opts.bucket, opts.out, own=own,
                         evict=own and opts.upgrade_engine == "inline")  # fmt: skip
    prepare_bucket(s3, opts.bucket, sources)
    run_id = uuid.uuid4().hex[:12]
    queue_url = sqs.create_queue(QueueName=f"txnpipe-chunks-{run_id}")["QueueUrl"]
    stack.callback(sqs.delete_queue, QueueUrl=queue_url)
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    notifications.subscribe(s3, opts.bucket, arn["Attributes"]["QueueArn"], run_id, sources,
                            private=own)  # fmt: skip
    stack.callback(notifications.unsubscribe, s3, opts.bucket, run_id, private=own)
    with postgres.connect(db_url) as conn:
        for source in sources:
            postgres.reset_source(conn, source)
    preflight.clear_outputs(opts.out, sources)
    prefixes = InputPrefixes()
    store.upload(opts.inputs.importance, prefixes.importance + opts.inputs.importance.name)
    engine = None
    if opts.upgrade_engine != "inline":
        engine = LocalUpgradeEngine(opts.upgrade_engine, store, settings)
        stack.callback(engine.close)
    chaos = Chaos(opts.chaos) if opts.chaos is not None else None
    streams = [_Stream(s, prefixes.transactions + s.path.name,
                       RangeReader(store, STREAM_READ_AHEAD),
                       s.estimated_chunks(settings.chunk_rows)) for s in opts.inputs.streams]  # fmt: skip
    work = _Run(streams, settings, store, sqs, queue_url, db_url, lease, engine, chaos,
                progress, opts.db_wait_seconds)  # fmt: skip
    with postgres.connect(db_url) as conn:  # each stream as its input's put event registers it
        registry = postgres.PgStreamRegistry(conn)
        for stream in streams:
            store.upload(stream.input.path, stream.input_key)
            register_input(store, registry, stream.input_key, None, prefixes)
    work.run()
    with postgres.connect(db_url) as conn:
        records = [stream_record(conn, source) for source in sources]
    summaries = [summary for summary, _ in records]
    for (_, log), stream in zip(records, opts.inputs.streams, strict=True):
        log["run"] = stream_inputs(stream.path, opts.inputs.importance, opts.settings.as_dict(),
                                   opts.upgrade_engine, opts.fast)  # fmt: skip
    write_run_log([log for _, log in records], opts.out, chaos)
    files = download(store, opts.out, sources)
    for s in summaries:
        s.files = files.get(s.source, 0)
    return RunSummary(summaries, chaos=chaos.report if chaos else None)
