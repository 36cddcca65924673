"""Mechanism X: cut the transactions file into chunks of N records on a fixed cadence.

A tick reads only from the stored byte offset (a ranged GET), so its cost does not grow
with the file. Chunk k is due at ``start + interval * k``: the schedule is anchored to the
stream's start, so a late or restarted invocation catches up without drifting. The chunk
is put before the pointer moves; a crash in between rewrites the same key with the same
bytes on the next tick, which is why a retry never skips or duplicates a chunk.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from txnpipe.core.csvscan import BOM, scan_records
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.keys import chunk_key, manifest_key
from txnpipe.core.layouts import transactions_layout
from txnpipe.core.ports import (
    ChunkerState,
    Fault,
    InputChanged,
    ObjectStore,
    ObjectVersion,
    Pointer,
    no_fault,
)
from txnpipe.core.settings import Settings
from txnpipe.core.streams import Stream, StreamRegistry

FIRST_WINDOW = 256 * 1024
READ_AHEAD = 2 * 1024 * 1024
# A reader kept across ticks (``txnpipe run``) serves the whole stream: fewer, larger GETs
# (moto reads the whole object to serve any range).
STREAM_READ_AHEAD = 16 * 1024 * 1024


@dataclass(frozen=True)
class TickReport:
    source: str
    chunks_written: list[int]
    done: bool
    busy: bool = False
    failed: str | None = None  # why the stream stopped for good in this tick


def due_at(started_at: datetime, chunk: int, interval_seconds: float) -> datetime:
    return started_at + timedelta(seconds=interval_seconds * chunk)


@dataclass(frozen=True)
class ChunkCut:
    records: list[bytes]
    next_offset: int
    at_end: bool


class RangeReader:
    """Ranged GETs with read-ahead: one request serves several chunks, never the whole file.

    Cost stays O(window) per request whatever the offset; the window only buys fewer
    round trips (a paced Lambda invocation writes about eight chunks).
    """

    def __init__(self, store: ObjectStore, read_ahead: int = READ_AHEAD) -> None:
        self.store = store
        self.read_ahead = read_ahead
        self._key: tuple[str, ObjectVersion | None] = ("", None)
        self._start = 0
        self._data = b""
        self._size = 0

    def read(
        self, key: str, start: int, length: int, version: ObjectVersion | None = None
    ) -> tuple[bytes, int]:
        """Bytes from ``start`` of ``version`` of the object: possibly fewer than ``length``
        when served from the buffer."""
        cached_end = self._start + len(self._data)
        if (key, version) != self._key or not self._start <= start < cached_end:
            try:
                self._data, self._size = self.store.get_range(
                    key, start, max(length, self.read_ahead), version
                )
            except InputChanged as exc:
                raise TxnpipeError(
                    f"transactions file {exc}; its stream reads only the version it started "
                    "from (enable versioning on the bucket, or put the original back)"
                ) from None
            self._key, self._start = (key, version), start
        offset = start - self._start
        return self._data[offset : offset + length], self._size


def read_records(
    reader: RangeReader, key: str, offset: int, limit: int, version: ObjectVersion | None = None
) -> ChunkCut:
    """Up to ``limit`` records from ``offset``, fetching more bytes only when a record is cut."""
    buf = b""
    base = offset
    records: list[bytes] = []
    window = FIRST_WINDOW
    while True:
        data, size = reader.read(key, base + len(buf), window, version)
        buf += data
        eof = base + len(buf) >= size
        scan = scan_records(buf, eof=eof, limit=limit - len(records))
        records.extend(scan.records)
        buf = buf[scan.consumed :]
        base += scan.consumed
        if len(records) >= limit or eof:
            break
        window *= 2
    # The end of the file is seen with the last full chunk when only empty lines follow it.
    at_end = eof and not scan_records(buf, eof=True).records
    return ChunkCut(records, base, at_end)


def _start_pointer(reader: RangeReader, source: str, input_key: str, now: datetime,
                   version: ObjectVersion | None = None) -> Pointer:  # fmt: skip
    """The pointer at the start of a stream, pinned to ``version`` of the input (the one its
    stream was registered with), or else to the input's version of this moment."""
    if version is None:
        try:
            version = reader.store.version(input_key)
        except KeyError:
            raise TxnpipeError(f"transactions file {input_key!r} does not exist") from None
    head, size = reader.read(input_key, 0, len(BOM), version)
    if size == 0:
        raise TxnpipeError(f"transactions file {input_key!r} is empty")
    skip = len(BOM) if head.startswith(BOM) else 0
    cut = read_records(reader, input_key, skip, 1, version)
    if not cut.records:
        raise TxnpipeError(f"transactions file {input_key!r} has no header line")
    header = cut.records[0]
    transactions_layout(header)
    return Pointer(source, input_key, header, now, 0, cut.next_offset, 0, False, version)


@dataclass(frozen=True)
class _OneStream:
    """The registry of ``run_tick``: one stream, given by its input, not registered; its
    failure is raised to the caller."""

    stream: Stream

    def chunking(self, sources: Sequence[str] | None = None) -> list[Stream]:
        return [self.stream]

    def fail(self, source: str, reason: str) -> None:
        raise TxnpipeError(reason)


def run_tick(
    store: ObjectStore,
    state: ChunkerState,
    settings: Settings,
    source: str,
    input_key: str,
    run_seconds: float = 0.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    fault: Fault = no_fault,
    max_chunks: int | None = None,
    reader: RangeReader | None = None,
) -> TickReport:
    """``tick_streams`` for one stream given by its input key (the bench, and tests of the
    cadence): every chunk that falls due within ``run_seconds`` from now.

    ``run_seconds=0`` writes only what is already due (the local runner's cadence);
    a Lambda invoked once a minute passes about 50 to pace itself through the minute.
    """
    registry = _OneStream(Stream(source, input_key, None, None, None))
    readers = {source: reader} if reader is not None else None
    (report,) = tick_streams(store, state, registry, settings, run_seconds, None, clock, sleep,
                             fault, max_chunks, readers)  # fmt: skip
    return report


def _write_next(
    store: ObjectStore,
    reader: RangeReader,
    state: ChunkerState,
    settings: Settings,
    pointer: Pointer,
    fault: Fault,
    written: list[int],
) -> Pointer:
    cut = read_records(reader, pointer.input_key, pointer.next_offset, settings.chunk_rows,
                       pointer.input_version)  # fmt: skip
    chunks, records = pointer.next_chunk, pointer.records
    if cut.records:
        store.put(chunk_key(pointer.source, chunks), pointer.header + b"".join(cut.records))
        fault("chunker.after_put")
        written.append(chunks)
        chunks += 1
        records += len(cut.records)
    if cut.at_end:
        manifest = json.dumps({"chunks": chunks, "records": records}).encode()
        store.put(manifest_key(pointer.source), manifest)
    pointer = replace(
        pointer, next_chunk=chunks, next_offset=cut.next_offset, records=records, done=cut.at_end
    )
    state.save(pointer)
    return pointer


@dataclass
class _Held:
    """A stream whose writer lock this tick holds."""

    pointer: Pointer
    reader: RangeReader
    written: list[int]


def tick_streams(
    store: ObjectStore,
    state: ChunkerState,
    registry: StreamRegistry | _OneStream,
    settings: Settings,
    run_seconds: float = 0.0,
    sources: Sequence[str] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    fault: Fault = no_fault,
    max_chunks: int | None = None,
    readers: Mapping[str, RangeReader] | None = None,
) -> list[TickReport]:
    """One tick over every live stream (or those of ``sources``): each stream's chunks as
    they fall due within ``run_seconds``, on its own cadence from its own start.

    Each stream has its own writer lock (a stream another tick holds is skipped, reported
    busy). Of the chunks due, the stream that has written least in this tick goes first, so
    a stream that is far behind never holds the others up. A stream whose input cannot be
    read as a transactions file fails alone, its reason recorded; the others go on.
    ``max_chunks`` bounds each stream's chunks in this tick.
    """
    reports: dict[str, TickReport] = {}
    held: dict[str, _Held] = {}
    with ExitStack() as locks:
        for stream in registry.chunking(sources):
            source = stream.source
            if not locks.enter_context(state.writer_lock(source)):
                reports[source] = TickReport(source, [], done=False, busy=True)
                continue
            reader = (readers or {}).get(source) or RangeReader(store)
            try:
                pointer = state.load(source)
                if pointer is None:
                    pointer = _start_pointer(reader, source, stream.input_key, clock(),
                                             stream.input_version)  # fmt: skip
                    state.save(pointer)
            except TxnpipeError as exc:
                registry.fail(source, str(exc))
                reports[source] = TickReport(source, [], done=False, failed=str(exc))
                continue
            held[source] = _Held(pointer, reader, [])
        deadline = clock() + timedelta(seconds=run_seconds)
        while True:
            open_ = {s: h for s, h in held.items() if not h.pointer.done
                     and (max_chunks is None or len(h.written) < max_chunks)}  # fmt: skip
            if not open_:
                break
            due = {s: due_at(h.pointer.started_at, h.pointer.next_chunk,
                             settings.chunk_interval_seconds) for s, h in open_.items()}  # fmt: skip
            now = clock()
            ready = [s for s in open_ if due[s] <= now]
            if not ready:
                first = min(due.values())
                if first > deadline:
                    break
                sleep((first - now).total_seconds())
                continue
            source = min(ready, key=lambda s: (len(open_[s].written), due[s], s))
            h = open_[source]
            try:
                h.pointer = _write_next(store, h.reader, state, settings, h.pointer, fault,
                                        h.written)  # fmt: skip
            except TxnpipeError as exc:
                registry.fail(source, str(exc))
                reports[source] = TickReport(source, h.written, done=False, failed=str(exc))
                del held[source]
    for source, h in held.items():
        reports[source] = TickReport(source, h.written, done=h.pointer.done)
    return [reports[s] for s in sorted(reports)]
