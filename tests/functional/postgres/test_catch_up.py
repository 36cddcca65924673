"""Catch-up: landed chunks applied several per transaction give what one per transaction gives,
detection for detection (same numbering, same chunk) and file for file, on generated and
real data, whatever the batches' sizes and however they alternate with single chunks."""
from __future__ import annotations

import gzip
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.functional.datasets import dataset, scaled_settings
from tests.functional.pipeline_kit import Kit
from tests.functional.test_full_size import REAL
from txnpipe.core import detector as detector_module
from txnpipe.core.ports import Fault
from txnpipe.core.settings import Settings
from txnpipe.local import services

Recorded = list[tuple[int, int, int, str, str]]  # (seq, chunk, pattern, merchant, customer)


def _replay(kit: Kit, chunks: int, groups: list[int],
            fault: Fault | None = None) -> tuple[Recorded, list[int]]:  # fmt: skip
    """Deliver the chunks' events in groups of the given sizes (a group's chunks land before
    the detector wakes), then the rest and the manifest's; the detections and each chunk's
    batch size."""
    keys = kit.chunk_keys(chunks)
    kit.hold(keys)
    with psycopg.connect(kit.database_url, autocommit=True) as conn:
        start = 0
        for size in groups:
            group = keys[start : start + size]
            if fault is None:
                kit.deliver(conn, group)
            else:  # a crash in the batch, then the retry of the same event
                with pytest.raises(RuntimeError):
                    kit.deliver(conn, group, fault)
                kit.deliver(conn, group)
            start += size
        kit.deliver(conn, keys[start:])
        recorded = conn.execute("SELECT seq, chunk, pattern, merchant, customer"
                                " FROM txnpipe.detections ORDER BY seq").fetchall()  # fmt: skip
        sizes = conn.execute("SELECT applied_with FROM txnpipe.chunk_log ORDER BY chunk")
        return [tuple(r) for r in recorded], [r[0] for r in sizes.fetchall()]  # type: ignore[misc]


@contextmanager
def _fresh_database(server_url: str) -> Iterator[str]:
    name = f"txnpipe_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _one_by_one_and_batched(s3_endpoint: str, server_url: str, settings: Settings,
                            transactions: Path, importance: Path, seed: int) -> None:  # fmt: skip
    """The same stream twice, each in a database and bucket of its own: one chunk per
    event, then in random groups (some of one chunk, so batches alternate with single
    chunks)."""
    results = []
    for grouped in (False, True):
        bucket = f"txnpipe-test-{uuid.uuid4().hex[:12]}"
        services.client("s3", s3_endpoint).create_bucket(Bucket=bucket)
        with _fresh_database(server_url) as url:
            kit = Kit.upload(s3_endpoint, bucket, url, settings, transactions, importance)
            chunks = kit.write_all_chunks()
            rng, groups = random.Random(seed), [1] * chunks
            if grouped:
                groups = []
                while sum(groups) < chunks:
                    groups.append(rng.choice([1, 1, 2, 3, 7, 13, 40]))
            results.append((*_replay(kit, chunks, groups), kit.detection_files()))
    (one, one_sizes, one_files), (batched, sizes, files) = results
    assert set(one_sizes) == {1}
    assert max(sizes) > 1, "the grouped delivery applied no batch"
    assert {r[2] for r in one} == {1, 2, 3}, "every pattern fires, so each is compared"
    assert batched == one
    assert files == one_files


def test_batches_equal_one_chunk_at_a_time_on_generated_data(
    s3_endpoint: str, pg_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(detector_module, "CATCH_UP_CHUNKS", 9)  # batch boundaries inside groups
    ds = dataset(rows=40_000)
    _one_by_one_and_batched(s3_endpoint, pg_server_url, ds.settings, ds.transactions,
                            ds.importance, seed=1)  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason=f"the real BankSim records are not at {REAL}")
def test_batches_equal_one_chunk_at_a_time_on_real_data(
    tmp_path: Path, s3_endpoint: str, pg_server_url: str
) -> None:
    transactions = tmp_path / "bs140513_032310.csv"
    importance = tmp_path / "bsNET140513_032310.csv"
    for path, name in ((transactions, "bs140513_032310.first220k.csv.gz"),
                       (importance, "bsNET140513_032310.first220k.derived.csv.gz")):  # fmt: skip
        path.write_bytes(gzip.decompress((REAL / name).read_bytes()))
    settings = scaled_settings(220_000, chunk_rows=1000, detection_batch_rows=100,
                               dei_max_female_male_ratio=1.2)
    _one_by_one_and_batched(s3_endpoint, pg_server_url, settings, transactions, importance,
                            seed=2)


def test_a_crash_inside_a_batch_leaves_nothing_and_its_retry_applies_it(
    s3_endpoint: str, bucket: str, database_url: str
) -> None:
    ds = dataset(rows=12_000)
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions,
                     ds.importance)
    chunks = kit.write_all_chunks()

    def crash(point: str) -> None:
        if point == "detector.in_ingest":
            raise RuntimeError(point)

    _, sizes = _replay(kit, chunks, [5, 1, 10], fault=crash)
    assert max(sizes) > 1
    assert kit.detection_files() == ds.expected()
