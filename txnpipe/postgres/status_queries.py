"""What ``txnpipe status`` reads: one consistent snapshot (a REPEATABLE READ, READ ONLY
transaction), so a source's figures agree even while the chunker and the detector work.
The schema is never created or migrated here: a database without it is an error."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from txnpipe.postgres.statements import statement

TABLES = ("sources", "chunker_state", "detector_state", "arrivals", "chunk_log", "detections")
_CONNECT_TIMEOUT = 10
_STATEMENT_TIMEOUT = "30s"


@dataclass(frozen=True)
class Snapshot:
    now: datetime
    missing: list[str]  # txnpipe tables the database lacks
    sources: list[tuple[Any, ...]]  # status_sources.sql, one row per source
    per_pattern: list[tuple[str, int, int]]  # (source, pattern, detections)
    streams: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # status_streams.sql
    refusals: list[tuple[Any, ...]] = field(default_factory=list)  # status_refusals.sql


def snapshot(url: str, source: str | None) -> Snapshot:
    """Raises psycopg.Error when the database cannot be reached or read."""
    conn = psycopg.connect(url, autocommit=True, prepare_threshold=None,
                           connect_timeout=_CONNECT_TIMEOUT)  # fmt: skip
    with conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            row = conn.execute(statement("status_read_only"),
                               {"timeout": _STATEMENT_TIMEOUT}).fetchone()  # fmt: skip
            assert row is not None
            missing = [name for (name,) in conn.execute(
                statement("status_missing_tables"), {"tables": list(TABLES)}).fetchall()]  # fmt: skip
            if missing:
                return Snapshot(row[1], missing, [], [])
            params = {"source": source}
            rows = conn.execute(statement("status_sources"), params).fetchall()
            per_pattern = conn.execute(statement("status_per_pattern"), params).fetchall()
            streams: dict[str, tuple[Any, ...]] = {}
            refusals: list[tuple[Any, ...]] = []
            has_streams = conn.execute(statement("status_has_streams")).fetchone()
            if has_streams and has_streams[0]:
                streams = {r[0]: tuple(r[1:]) for r in conn.execute(statement("status_streams"),
                                                                    params)}  # fmt: skip
                refusals = conn.execute(statement("status_refusals"), params).fetchall()
    return Snapshot(row[1], [], rows, [(n, int(p), int(c)) for n, p, c in per_pattern],
                    streams, refusals)  # fmt: skip
