"""The pipeline end to end on real PostgreSQL and moto, against the spec's brute-force reference."""
from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import detection_files
from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit, s3_event
from tests.reference import reference_chunks, reference_rejects
from txnpipe import postgres
from txnpipe.core.chunker import run_tick
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.events import chunk_refs
from txnpipe.local import services
from txnpipe.local.inputs import InputFiles
from txnpipe.local.runner import RunOptions, run


@pytest.mark.parametrize("layout", ["banksim", "seed"])
def test_run_matches_the_reference_file_for_file(
    layout: str, tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset(layout)
    opts = RunOptions(InputFiles.check(ds.transactions, ds.importance), tmp_path, ds.settings,
                      fast=True, database_url=database_url, s3_endpoint=s3_endpoint,
                      bucket=bucket)  # fmt: skip
    summary = run(opts)
    source = opts.inputs.sources[0]
    expected = ds.expected()
    assert {row[0] for f in expected for row in f} == {"PatId1", "PatId2", "PatId3"}
    assert detection_files(tmp_path, source) == expected
    assert sum(summary.detections.values()) == sum(map(len, expected))

    data = ds.transactions.read_bytes()
    chunks = reference_chunks(data, ds.settings.chunk_rows)
    folder = tmp_path / "chunks" / source
    assert [(folder / f"chunk_{k:06d}.csv").read_bytes() for k in range(len(chunks))] == chunks
    manifest = json.loads((folder / "_manifest.json").read_text())
    assert manifest == {"chunks": len(chunks), "records": summary.records}

    rejected = {}
    for path in sorted((tmp_path / "rejects" / source).glob("chunk_*.csv")):
        lines = path.read_text().splitlines()[1:]
        rejected.update({int(line.split(",", 1)[0]): path.name for line in lines})
    assert sorted(rejected) == sorted(reference_rejects(data))
    assert summary.rejects == len(rejected) > 0


def test_chunks_concatenate_back_to_the_input(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    n = kit.write_all_chunks()
    header = ds.transactions.read_bytes().split(b"\n", 1)[0] + b"\n"
    body = b"".join(kit.store.get(key)[len(header) :] for key in kit.chunk_keys(n)[:-1])
    lines = [line for line in ds.transactions.read_bytes().split(b"\n")[1:] if line]
    assert body == b"".join(line + b"\n" for line in lines)


def test_every_event_twice_in_shuffled_order(database_url: str, s3_endpoint: str, bucket: str) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    keys = kit.chunk_keys(kit.write_all_chunks())
    events = keys * 2
    random.Random(3).shuffle(events)
    with postgres.connect(database_url) as conn:
        for i in range(0, len(events), 3):  # S3 may batch several records into one event
            kit.deliver(conn, events[i : i + 3])
    assert kit.detection_files() == ds.expected()


FAULT_POINTS = ["detector.in_ingest", "detector.after_commit", "detector.after_file"]


class Killed(Exception):
    """The Lambda died here."""


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_detector_killed_between_steps_and_retried(
    point: str, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    kit.settings = replace(kit.settings, detection_batch_rows=3)
    keys = kit.chunk_keys(kit.write_all_chunks())
    kills = 0
    rng = random.Random(5)

    def fault(at: str) -> None:
        nonlocal kills
        if at == point and rng.random() < 0.3:
            kills += 1
            raise Killed(at)

    for key in keys:
        for _attempt in range(50):  # Lambda retries an asynchronous invocation
            with postgres.connect(database_url) as conn:  # a new container each time
                try:
                    kit.deliver(conn, [key], fault)
                    break
                except Killed:
                    continue
    with postgres.connect(database_url) as conn:  # a late event finishes what the last kill left
        kit.deliver(conn, keys[-1:])
    assert kills > 3
    expected = [[row for f in ds.expected() for row in f][i : i + 3] for i in range(0, 10**6, 3)]
    assert kit.detection_files() == [f for f in expected if f]


def test_chunker_killed_after_put_rewrites_the_same_chunk(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    calls = 0

    def fault(at: str) -> None:
        nonlocal calls
        calls += 1
        if calls in (3, 4, 9):
            raise Killed(at)

    for _attempt in range(10):
        try:
            n = kit.write_all_chunks(fault)
            break
        except Killed:
            continue
    expected = reference_chunks(ds.transactions.read_bytes(), ds.settings.chunk_rows)
    assert [kit.store.get(k) for k in kit.chunk_keys(n)[:-1]] == expected


def test_early_chunk_waits_for_its_predecessors(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    keys = kit.chunk_keys(kit.write_all_chunks())
    first = kit.store.get(keys[0])
    kit.store.client.delete_object(Bucket=kit.store.bucket, Key=keys[0])  # not landed yet
    with postgres.connect(database_url) as conn:
        kit.deliver(conn, [keys[2], keys[1]])
        progress = conn.execute("SELECT next_chunk FROM txnpipe.detector_state").fetchone()
        assert progress == (0,)  # nothing applied before chunk 0 lands
        kit.store.put(keys[0], first)
        kit.deliver(conn, [keys[0]])
        assert conn.execute("SELECT next_chunk FROM txnpipe.detector_state").fetchone() == (3,)


def test_lost_events_are_found_in_the_store(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """A later chunk's event finds the earlier chunks whose events were lost (one LIST);
    a sweep, with no event at all, finds the rest and the manifest, and ends the stream."""
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    chunks = kit.write_all_chunks()
    keys = kit.chunk_keys(chunks)
    with postgres.connect(database_url) as conn:
        detector = kit.detector(conn)
        report = detector.handle(chunk_refs(s3_event(bucket, keys[3])))  # every other lost
        assert report.applied == [(kit.source, k) for k in range(chunks)]
        assert report.recovered == [(kit.source, k) for k in range(chunks) if k != 3]
        assert not report.ended  # the manifest's event is lost too
        report = detector.sweep([kit.source])
        assert report.recovered == [(kit.source, None)] and report.ended == {kit.source}
        assert detector.sweep([kit.source]).applied == []  # an ended stream is left alone
    assert kit.detection_files() == ds.expected()


def test_a_sweep_registers_a_stream_whose_every_event_was_lost(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    kit.write_all_chunks()
    with postgres.connect(database_url) as conn:
        assert kit.detector(conn).sweep([kit.source]).ended == {kit.source}
    assert kit.detection_files() == ds.expected()



def test_two_chunker_ticks_at_once_never_write_a_chunk_twice(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    import threading
    from collections import Counter

    from txnpipe.core.chunker import RangeReader, run_tick

    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    puts: Counter[str] = Counter()

    class CountingStore:
        """The real S3 store, counting puts."""

        def __getattr__(self, name: str) -> object:
            return getattr(kit.store, name)

        def put(self, key: str, data: bytes) -> None:
            puts[key] += 1
            kit.store.put(key, data)

    barrier = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with postgres.connect(database_url) as conn:
                state, reader = postgres.PgChunkerState(conn), RangeReader(kit.store)
                barrier.wait()
                while not run_tick(CountingStore(), state, kit.settings, kit.source,
                                   kit.input_key, reader=reader, max_chunks=1).done:  # fmt: skip
                    pass
        except BaseException as exc:  # noqa: BLE001 - reported below, not lost in the thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [e for e in errors if not isinstance(e, threading.BrokenBarrierError)], errors
    expected = reference_chunks(ds.transactions.read_bytes(), ds.settings.chunk_rows)
    keys = kit.chunk_keys(len(expected))
    assert set(puts) == set(keys) and set(puts.values()) == {1}
    assert [kit.store.get(k) for k in keys[:-1]] == expected


def _stream_half(kit: Kit) -> int:
    with postgres.connect(kit.database_url) as conn:
        state = postgres.PgChunkerState(conn)
        for _ in range(5):
            run_tick(kit.store, state, kit.settings, kit.source, kit.input_key, max_chunks=1)
    return 5


def test_an_input_put_again_while_its_stream_is_live_changes_nothing(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """The deployed bucket keeps versions: the stream reads the version it started from."""
    ds = dataset()
    s3 = services.client("s3", s3_endpoint)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    _stream_half(kit)
    kit.store.put(kit.input_key, b"CustomerId,MerchantId,transaction_value,gender,transaction_type\n"
                  + b"C1,M1,1,F,x\n" * 100)  # fmt: skip
    n = kit.write_all_chunks()
    expected = reference_chunks(ds.transactions.read_bytes(), ds.settings.chunk_rows)
    assert [kit.store.get(k) for k in kit.chunk_keys(n)[:-1]] == expected


def test_an_unversioned_input_replaced_mid_stream_stops_it_with_the_reason(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    _stream_half(kit)
    kit.store.put(kit.input_key, ds.transactions.read_bytes() + b"C9,M9,1,F,x\n")
    with pytest.raises(TxnpipeError, match="no longer the object its stream started from"):
        kit.write_all_chunks()
