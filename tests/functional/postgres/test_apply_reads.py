"""What applying a chunk reads is bounded by the chunk, not by the stream so far
(``postgres/apply.py``, ``ingest.py`` and their statements): a plan that reads a whole
table on every chunk makes a long stream slow down chunk by chunk, and it needs no timing
to be seen. The rows each table gives up are counted in the apply's own transaction
statistics."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from txnpipe import postgres
from txnpipe.core.chunkparse import parse_chunk
from txnpipe.core.layouts import Transaction
from txnpipe.core.settings import Settings
from txnpipe.core.weights import weight_rows
from txnpipe.postgres.detector_state import PgDetectorState
from txnpipe.tools.generate import generate

STREAM = 40_000  # generated records applied as one chunk before the measured one
CHUNK = 10
# PatId1 evaluated too: every merchant is past its minimum, so each touched merchant's
# thresholds move and its ranks are read
SETTINGS = replace(Settings(), chunk_rows=STREAM, upgrade_min_merchant_txns=10)


def _rows_read(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)"
        " FROM pg_stat_xact_user_tables WHERE schemaname = 'txnpipe'").fetchall()  # fmt: skip
    return dict(rows)


def _apply(state: PgDetectorState, chunk: int, transactions: list[Transaction]) -> dict[str, int]:
    """The rows the apply read. The counts are the backend's pending ones, flushed only
    between transactions, so the difference is taken within the apply's."""
    with state.apply_session("s") as session:
        before = _rows_read(state.conn)
        session.apply(chunk, transactions, len(transactions), 0, datetime.now(UTC), SETTINGS)
        after = _rows_read(state.conn)
    return {t: n - before.get(t, 0) for t, n in after.items() if n > before.get(t, 0)}


def _count(conn: psycopg.Connection, table: str) -> int:
    query = sql.SQL("SELECT count(*) FROM txnpipe.{}").format(sql.Identifier(table))
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_applying_a_chunk_reads_rows_in_proportion_to_the_chunk(
    database_url: str, tmp_path: Path
) -> None:
    files = generate(tmp_path, rows=STREAM + CHUNK, seed=3, layout="banksim")
    data = files.transactions.read_bytes()
    header, _, body = data.partition(b"\n")
    lines = body.splitlines(keepends=True)
    first = parse_chunk(header + b"\n" + b"".join(lines[:STREAM]), 0, STREAM).transactions
    measured = parse_chunk(header + b"\n" + b"".join(lines[STREAM:]), 1, STREAM).transactions
    with postgres.connect(database_url) as conn:
        state = PgDetectorState(conn)
        state.ensure_source("s")
        state.load_weights("s", weight_rows(files.importance.read_bytes()))
        _apply(state, 0, first)
        conn.execute("ANALYZE")  # statistics as autovacuum would leave them
        read = _apply(state, 1, measured)
        sizes = {t: _count(conn, t) for t in ("history", "customers", "pairs", "weights")}
    # each of the chunk's records, pairs and customers is probed a few times (staging, the
    # upsert, its merchant's ranks); a scan of any of these tables would read over twice that
    limit = 20 * CHUNK
    assert len(measured) == CHUNK
    assert min(sizes.values()) > 2 * limit, sizes
    assert {t: n for t, n in read.items() if n > limit} == {}, (read, sizes)
