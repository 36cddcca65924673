from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from tests.memstore import MemoryStore
from txnpipe.core.chunker import RangeReader, due_at, read_records, run_tick, tick_streams
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.ports import Pointer
from txnpipe.core.settings import Settings
from txnpipe.core.streams import Stream

HEADER = b"CustomerId,MerchantId,transaction_value,gender,transaction_type\r\n"
T0 = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)


@dataclass
class MemoryPointer:
    pointers: dict[str, Pointer] = field(default_factory=dict)
    locked: bool = False

    @contextmanager
    def writer_lock(self, source: str) -> Iterator[bool]:
        if self.locked:
            yield False
            return
        self.locked = True
        try:
            yield True
        finally:
            self.locked = False

    def load(self, source: str) -> Pointer | None:
        return self.pointers.get(source)

    def save(self, pointer: Pointer) -> None:
        self.pointers[pointer.source] = pointer


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _file(n: int) -> bytes:
    lines = [b"C%d,M1,%d,F,food\r\n" % (i, i) for i in range(n)]
    lines.insert(3, b"\r\n")  # an empty line is not a record
    lines[5] = b'C4,"M,\r\n1",4,F,food\r\n'  # a quoted line break
    return b"\xef\xbb\xbf" + HEADER + b"".join(lines)


def _tick(store: MemoryStore, state: MemoryPointer, clock: Clock, settings: Settings, **kw: object):
    return run_tick(store, state, settings, "tx", "inputs/tx.csv", clock=clock,
                    sleep=clock.sleep, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_chunks_are_byte_exact_and_concatenate_back() -> None:
    data = _file(25)
    store, state, clock = MemoryStore({"inputs/tx.csv": data}), MemoryPointer(), Clock()
    settings = Settings(chunk_rows=10, chunk_interval_seconds=7)
    report = _tick(store, state, clock, settings, run_seconds=60)
    assert report.chunks_written == [0, 1, 2] and report.done
    chunks = [store.objects[f"chunks/tx/chunk_{k:06d}.csv"] for k in range(3)]
    assert all(c.startswith(HEADER) for c in chunks)
    body = b"".join(c[len(HEADER) :] for c in chunks)
    assert body == data[3 + len(HEADER) :].replace(b"\r\n\r\n", b"\r\n", 1)
    assert json.loads(store.objects["chunks/tx/_manifest.json"]) == {"chunks": 3, "records": 25}
    assert clock.now == T0 + timedelta(seconds=14)  # chunk 2 due at start + 2 * 7


def test_a_tick_writes_only_what_is_due_and_resumes_without_drift() -> None:
    store, state, clock = MemoryStore({"inputs/tx.csv": _file(40)}), MemoryPointer(), Clock()
    settings = Settings(chunk_rows=10, chunk_interval_seconds=7)
    assert _tick(store, state, clock, settings).chunks_written == [0]
    clock.now = T0 + timedelta(seconds=20)  # late: chunks 1 and 2 are overdue
    assert _tick(store, state, clock, settings).chunks_written == [1, 2]
    assert _tick(store, state, clock, settings).chunks_written == []
    clock.now = T0 + timedelta(seconds=21)
    report = _tick(store, state, clock, settings)
    assert report.chunks_written == [3] and report.done  # 40 records: the end is seen at once


def test_due_times_are_anchored_to_the_start() -> None:
    assert due_at(T0, 590, 7) == T0 + timedelta(seconds=4130)


def test_a_second_writer_backs_off() -> None:
    store, state, clock = MemoryStore({"inputs/tx.csv": _file(5)}), MemoryPointer(), Clock()
    state.locked = True
    report = _tick(store, state, clock, Settings(chunk_rows=10))
    assert report.busy and report.chunks_written == [] and not store.objects.keys() - {"inputs/tx.csv"}


def test_crash_after_put_rewrites_the_same_chunk() -> None:
    data = _file(30)
    store, state, clock = MemoryStore({"inputs/tx.csv": data}), MemoryPointer(), Clock()
    settings = Settings(chunk_rows=10, chunk_interval_seconds=0)

    seen: list[str] = []

    def crash_on_second(point: str) -> None:
        seen.append(point)
        if len(seen) == 2:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        _tick(store, state, clock, settings, fault=crash_on_second)
    first_try = store.objects["chunks/tx/chunk_000001.csv"]
    assert state.pointers["tx"].next_chunk == 1
    report = _tick(store, state, clock, settings)
    assert report.chunks_written == [1, 2] and store.objects["chunks/tx/chunk_000001.csv"] == first_try


def test_a_tick_reads_from_the_offset_not_the_whole_file() -> None:
    lines = [b"C%d,M1,1,F,food\n" % i for i in range(50_000)]
    store = MemoryStore({"inputs/tx.csv": HEADER + b"".join(lines)})
    offset = len(HEADER) + sum(map(len, lines[:25_000]))
    cut = read_records(RangeReader(store, read_ahead=0), "inputs/tx.csv", offset, 1000)
    assert cut.records == lines[25_000:26_000]
    assert cut.next_offset == offset + sum(map(len, cut.records)) and not cut.at_end
    assert store.ranged_bytes <= 256 * 1024  # one window, not the 900 KB file


def test_header_only_file_gives_an_empty_manifest_and_no_chunks() -> None:
    store, state, clock = MemoryStore({"inputs/tx.csv": HEADER}), MemoryPointer(), Clock()
    report = _tick(store, state, clock, Settings())
    assert report.done and report.chunks_written == []
    assert json.loads(store.objects["chunks/tx/_manifest.json"]) == {"chunks": 0, "records": 0}


def test_unknown_header_is_refused_before_any_chunk() -> None:
    store, state, clock = MemoryStore({"inputs/tx.csv": b"a,b\n1,2\n"}), MemoryPointer(), Clock()
    with pytest.raises(TxnpipeError, match="matches no layout"):
        _tick(store, state, clock, Settings())
    assert list(store.objects) == ["inputs/tx.csv"]


def test_read_ahead_serves_several_chunks_from_one_request() -> None:
    lines = [b"C%d,M1,1,F,food\n" % i for i in range(20_000)]
    store = MemoryStore({"inputs/tx.csv": HEADER + b"".join(lines)})
    reader = RangeReader(store, read_ahead=100_000)
    offset, got = len(HEADER), []
    for _ in range(20):
        cut = read_records(reader, "inputs/tx.csv", offset, 1000)
        got.extend(cut.records)
        offset = cut.next_offset
    assert got == lines and cut.at_end
    assert store.ranged_bytes < 2 * len(HEADER + b"".join(lines))


@dataclass
class MemoryRegistry:
    """The registry of a few streams, and the reasons the failed ones failed."""

    streams: list[Stream]
    failed: dict[str, str] = field(default_factory=dict)

    def chunking(self, sources: object = None) -> list[Stream]:
        return [s for s in self.streams if s.source not in self.failed]

    def fail(self, source: str, reason: str) -> None:
        self.failed[source] = reason


@dataclass
class PerStreamLocks(MemoryPointer):
    held: set[str] = field(default_factory=set)

    @contextmanager
    def writer_lock(self, source: str) -> Iterator[bool]:
        if source in self.held:
            yield False
            return
        self.held.add(source)
        try:
            yield True
        finally:
            self.held.discard(source)


def test_every_live_stream_advances_on_its_own_cadence_and_a_bad_file_fails_alone() -> None:
    store = MemoryStore({"inputs/a.csv": _file(25), "inputs/b.csv": _file(15),
                         "inputs/bad.csv": b"customer,merchant\r\nC1,M1\r\n"})  # fmt: skip
    registry = MemoryRegistry([Stream(s, f"inputs/{s}.csv", None, None, None)
                               for s in ("a", "b", "bad")])  # fmt: skip
    state, clock = PerStreamLocks(), Clock()
    # b started 3 s after a: its chunk k is due at T0 + 3 + 7k, a's at T0 + 7k
    b_start = T0 + timedelta(seconds=3)
    state.save(Pointer("b", "inputs/b.csv", HEADER, b_start, 0, 3 + len(HEADER), 0, False))
    written: list[tuple[str, datetime]] = []
    put = store.put
    store.put = lambda key, data: (written.append((key, clock.now)), put(key, data))  # type: ignore[method-assign]
    settings = Settings(chunk_rows=10, chunk_interval_seconds=7)
    reports = tick_streams(store, state, registry, settings, run_seconds=60, clock=clock,
                           sleep=clock.sleep)  # fmt: skip
    assert [(r.source, r.chunks_written, r.done) for r in reports] == [
        ("a", [0, 1, 2], True), ("b", [0, 1], True), ("bad", [], False)]
    assert "header" in registry.failed["bad"] and reports[2].failed == registry.failed["bad"]
    chunks = [(key, at - T0) for key, at in written if key.endswith(".csv")]
    assert chunks == [(f"chunks/{s}/chunk_{k:06d}.csv", timedelta(seconds=t)) for s, k, t in (
        ("a", 0, 0), ("b", 0, 3), ("a", 1, 7), ("b", 1, 10), ("a", 2, 14))]  # fmt: skip


def test_a_stream_far_behind_does_not_hold_the_others_up() -> None:
    """Of the chunks due, the stream that has written least in this tick goes first."""
    store = MemoryStore({"inputs/a.csv": _file(45), "inputs/b.csv": _file(45)})
    registry = MemoryRegistry([Stream(s, f"inputs/{s}.csv", None, None, None) for s in "ab"])
    state, clock = PerStreamLocks(), Clock()
    # a started a minute ago (all of its chunks are due); b starts now
    state.save(Pointer("a", "inputs/a.csv", HEADER, T0 - timedelta(seconds=60), 0,
                       3 + len(HEADER), 0, False))  # fmt: skip
    order: list[str] = []
    put = store.put
    store.put = lambda key, data: (order.append(key.split("/")[1]), put(key, data))  # type: ignore[method-assign]
    settings = Settings(chunk_rows=10, chunk_interval_seconds=7)
    tick_streams(store, state, registry, settings, run_seconds=0, clock=clock, sleep=clock.sleep)
    assert order[:4] == ["a", "b", "a", "a"]  # b's chunk 0 is due at once, then a catches up
