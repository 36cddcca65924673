"""Mechanism X's state: the pointer of each stream, and its one-writer lock."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from txnpipe.core.ports import ObjectVersion, Pointer
from txnpipe.postgres.connection import source_id
from txnpipe.postgres.statements import statement


@dataclass
class PgChunkerState:
    conn: psycopg.Connection

    @contextmanager
    def writer_lock(self, source: str) -> Iterator[bool]:
        sid = {"sid": source_id(self.conn, source)}
        row = self.conn.execute(statement("writer_lock"), sid).fetchone()
        acquired = bool(row and row[0])
        try:
            yield acquired
        finally:
            if acquired:
                self.conn.execute(statement("writer_unlock"), sid)

    def load(self, source: str) -> Pointer | None:
        row = self.conn.execute(statement("load_pointer"), {"source": source}).fetchone()
        if row is None:
            return None
        version = ObjectVersion(row[7], row[8]) if row[8] is not None else None
        return Pointer(source, row[0], bytes(row[1]), *row[2:7], version)

    def save(self, p: Pointer) -> None:
        version = p.input_version
        self.conn.execute(statement("save_pointer"), {
            "source": p.source, "input_key": p.input_key, "header": p.header,
            "started_at": p.started_at, "next_chunk": p.next_chunk,
            "next_offset": p.next_offset, "records": p.records, "done": p.done,
            "input_version_id": version and version.version_id,
            "input_etag": version and version.etag,
        })  # fmt: skip
