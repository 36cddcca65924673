"""What the tools read about streams (``txnpipe run``'s summary and run.json, the Lambda
telemetry): one home for those queries, so no other module speaks SQL."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from txnpipe.postgres.connection import source_id
from txnpipe.postgres.statements import statement

ChunkLogRow = tuple[int, datetime | None, datetime, datetime, int, int, int]
"""(chunk, arrived_at, y_start, applied_at, records, rejects, detections)."""


def chunk_log(conn: psycopg.Connection, source: str) -> list[ChunkLogRow]:
    rows = conn.execute(statement("stream_chunk_log"), {"sid": source_id(conn, source)})
    return [tuple(r) for r in rows.fetchall()]  # type: ignore[misc]


def detections_by_pattern(conn: psycopg.Connection, source: str) -> dict[int, int]:
    rows = conn.execute(statement("stream_detections_by_pattern"), {"sid": source_id(conn, source)})
    return {int(p): int(n) for p, n in rows.fetchall()}


def importance_rows(conn: psycopg.Connection, source: str) -> tuple[int, int]:
    """(rows read, rows skipped) of the stream's importance file."""
    row = conn.execute(statement("stream_importance_rows"), {"sid": source_id(conn, source)})
    found = row.fetchone()
    return (int(found[0]), int(found[1])) if found else (0, 0)


def detections_so_far(conn: Any, sources: Sequence[str]) -> dict[str, int]:
    rows = conn.execute(statement("telemetry_detections_so_far"), {"sources": list(sources)})
    return {name: int(n) for name, n in rows.fetchall()}


def applied_chunks(conn: Any, source: str, chunks: Sequence[int]) -> list[tuple[Any, ...]]:
    """(chunk, records, rejects, detections, lag seconds) of the chunks just applied."""
    params = {"source": source, "chunks": list(chunks)}
    return list(conn.execute(statement("telemetry_chunk_log"), params).fetchall())


def recorded_by_pattern(conn: Any, source: str, chunks: Sequence[int], first_seq: int,
                        runs: Sequence[tuple[int, int]], percentile_pattern: int) -> dict[int, int]:  # fmt: skip
    """Detections by pattern that an invocation recorded (see the statement)."""
    rows = conn.execute(statement("telemetry_detections_by_pattern"), {
        "source": source, "chunks": list(chunks), "first_seq": first_seq,
        "run_first": [r[0] for r in runs], "run_last": [r[1] for r in runs],
        "percentile_pattern": percentile_pattern,
    })  # fmt: skip
    return {int(p): int(n) for p, n in rows.fetchall()}


def pending(conn: Any, source: str) -> tuple[int, float]:
    """(chunks landed and waiting, age in seconds of the oldest)."""
    row = conn.execute(statement("telemetry_pending"), {"source": source}).fetchone()
    return (int(row[0]), max(0.0, float(row[1]))) if row else (0, 0.0)
