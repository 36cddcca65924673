"""One stream through each engine, for the tests that every engine must pass alike: the
inline detector on PostgreSQL (its detections read from the outbox), DuckDB, and Spark."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psycopg

from tests.functional.pipeline_kit import Kit, s3_event
from txnpipe.batch import duckdb_engine
from txnpipe.batch.frames import transactions_table
from txnpipe.core.detections import Detection
from txnpipe.core.events import chunk_refs
from txnpipe.core.keys import chunk_key
from txnpipe.core.rules import CATALOGUE, Catalogue
from txnpipe.core.settings import Settings
from txnpipe.core.weights import parse_weights

Engine = Callable[..., set[Detection]]


def inline(kit: Kit, catalogue: Catalogue = CATALOGUE) -> set[Detection]:
    chunks = kit.write_all_chunks()
    with psycopg.connect(kit.database_url, autocommit=True) as conn:
        detector = replace(kit.detector(conn), rules=catalogue)
        detector.handle(chunk_refs(s3_event(kit.store.bucket, *kit.chunk_keys(chunks))))
        rows = conn.execute("SELECT chunk, pattern, merchant, customer FROM txnpipe.detections")
        return {Detection(*row) for row in rows.fetchall()}


def _chunks(kit: Kit) -> list[tuple[int, bytes]]:
    chunks = kit.write_all_chunks()
    return [(k, kit.store.get(chunk_key(kit.source, k))) for k in range(chunks)]


def duckdb(kit: Kit, catalogue: Catalogue = CATALOGUE) -> set[Detection]:
    weights = parse_weights(kit.store.get(kit.importance_key))
    table = transactions_table(_chunks(kit), weights, kit.settings.chunk_rows)
    return set(duckdb_engine.detections(table, kit.settings, catalogue))


def spark(kit: Kit, catalogue: Catalogue = CATALOGUE) -> set[Detection]:
    from txnpipe.batch import spark_engine

    session = spark_engine.local_session("local[2]")
    importance = kit.store.get(kit.importance_key)
    frame = spark_engine.transactions_df(session, _chunks(kit), importance, kit.settings.chunk_rows)
    return set(spark_engine.detections(session, frame, kit.settings, catalogue))


def stream(tmp_path: Path, name: str, header: str, records: list[str], importance: str,
           endpoint: str, bucket: str, database_url: str, settings: Settings) -> Kit:  # fmt: skip
    """A hand-made stream uploaded as the functions would find it."""
    tx = tmp_path / f"{name}.csv"
    tx.write_text(header + "".join(records), encoding="utf-8")
    imp = tmp_path / f"{name}_importance.csv"
    imp.write_text(importance, encoding="utf-8")
    return Kit.upload(endpoint, bucket, database_url, settings, tx, imp)
