"""The outbox merges a batch run's PatId1 candidates in bounded slices, numbered as one
statement over all of them numbers them."""
from __future__ import annotations

import time
from dataclasses import replace

import psycopg
import pytest

from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit, s3_event
from txnpipe.core.events import chunk_refs
from txnpipe.local import services
from txnpipe.local.engines import LocalUpgradeEngine
from txnpipe.postgres import outbox

Recorded = list[tuple[int, int, int, str, str]]  # (seq, chunk, pattern, merchant, customer)


def _merged(s3_endpoint: str, bucket: str, database_url: str) -> Recorded:
    """Every chunk applied with PatId1 left to DuckDB, then its one run merged."""
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions,
                     ds.importance)  # fmt: skip
    chunks = kit.write_all_chunks()
    engine = LocalUpgradeEngine("duckdb", kit.store, kit.settings)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            detector = replace(kit.detector(conn), upgrade_engine=engine)
            detector.handle(chunk_refs(s3_event(kit.store.bucket, *kit.chunk_keys(chunks))))
            deadline = time.monotonic() + 120
            while not detector.poll_upgrades().upgrade_runs:
                assert time.monotonic() < deadline, "the batch run did not finish"
                time.sleep(0.2)
            rows = conn.execute("SELECT seq, chunk, pattern, merchant, customer"
                                " FROM txnpipe.detections ORDER BY seq").fetchall()  # fmt: skip
    finally:
        engine.close()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_candidates_merged_in_slices_are_numbered_as_in_one_statement(
    s3_endpoint: str, bucket: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _merged(s3_endpoint, bucket, database_url)
    upgrades = sum(r[2] == 1 for r in whole)
    assert upgrades > 4, "several slices of PatId1 rows are compared"
    monkeypatch.setattr(outbox, "MERGE_ROWS", 2)
    with psycopg.connect(database_url, autocommit=True) as conn:  # the same stream afresh
        conn.execute("DROP SCHEMA txnpipe CASCADE")
    again = f"{bucket}-slices"
    services.client("s3", s3_endpoint).create_bucket(Bucket=again)
    assert _merged(s3_endpoint, again, database_url) == whole
