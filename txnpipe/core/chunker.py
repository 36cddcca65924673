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
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

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


def _start_pointer(reader: RangeReader, source: str, input_key: str, now: datetime) -> Pointer:
    """The pointer at the start of a stream, pinned to the input's version of this moment."""
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


def run_tick(
    store: ObjectStore,
    state: ChunkerState,
    settings: Settings,
    source: str,
    input_key: str,
    run_seconds: float = 0.0,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    sleep: Callable[[float], None] = time.sleep,
    fault: Fault = no_fault,
    max_chunks: int | None = None,
    reader: RangeReader | None = None,
) -> TickReport:
    """Write every chunk that falls due within ``run_seconds`` from now, then return.

    ``run_seconds=0`` writes only what is already due (the local runner's cadence);
    a Lambda invoked once a minute passes about 50 to pace itself through the minute.
    """
    written: list[int] = []
    reader = reader or RangeReader(store)
    with state.writer_lock(source) as acquired:
        if not acquired:
            return TickReport(source, written, done=False, busy=True)
        pointer = state.load(source)
        if pointer is None:
            pointer = _start_pointer(reader, source, input_key, clock())
            state.save(pointer)
        deadline = clock() + timedelta(seconds=run_seconds)
        while not pointer.done and (max_chunks is None or len(written) < max_chunks):
            due = due_at(pointer.started_at, pointer.next_chunk, settings.chunk_interval_seconds)
            now = clock()
            if due > now:
                if due > deadline:
                    break
                sleep((due - now).total_seconds())
            pointer = _write_next(store, reader, state, settings, pointer, fault, written)
    return TickReport(source, written, done=pointer.done)


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
