"""The stream registry (``txnpipe.streams``): each stream's input and importance file, pinned
to their versions, its status and the reason it failed; and the puts refused."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from txnpipe.core.errors import TxnpipeError
from txnpipe.core.ports import ObjectStore, ObjectVersion
from txnpipe.core.streams import (
    PURGED_TABLES,
    InputPrefixes,
    Purge,
    Refusal,
    Registration,
    Status,
    Stream,
    live_refusal,
    register_input,
)
from txnpipe.postgres.connection import source_id
from txnpipe.postgres.detector_state import PgDetectorState
from txnpipe.postgres.statements import statement


def _version(version_id: str | None, etag: str | None) -> ObjectVersion | None:
    return None if etag is None else ObjectVersion(version_id, etag)


def _stream(source: str, row: Sequence[Any]) -> Stream:
    return Stream(source, row[0], _version(row[1], row[2]), row[3], _version(row[4], row[5]),
                  Status(row[6]), row[7], row[8], row[9])  # fmt: skip


@dataclass
class PgStreamRegistry:
    conn: psycopg.Connection

    def stream(self, source: str) -> Stream | None:
        row = self.conn.execute(statement("stream_of"), {"source": source}).fetchone()
        return None if row is None else _stream(source, row)

    def register(self, stream: Stream) -> bool:
        importance = stream.importance_version
        row = self.conn.execute(statement("register_stream"), {
            "sid": source_id(self.conn, stream.source), "input_key": stream.input_key,
            "input_version_id": stream.input_version and stream.input_version.version_id,
            "input_etag": stream.input_version and stream.input_version.etag,
            "importance_key": stream.importance_key,
            "importance_version_id": importance and importance.version_id,
            "importance_etag": importance and importance.etag, "status": stream.status.value,
            "error": stream.error, "restarts": stream.restarts,
        }).fetchone()  # fmt: skip
        return row is not None

    def refuse(self, refusal: Refusal) -> None:
        version = refusal.input_version
        self.conn.execute(statement("refuse_stream"), {
            "source": refusal.source, "input_key": refusal.input_key,
            "input_version_id": version and version.version_id,
            "input_etag": version and version.etag, "reason": refusal.reason,
        })  # fmt: skip

    def fail(self, source: str, reason: str) -> None:
        self.conn.execute(statement("fail_stream"),
                          {"sid": source_id(self.conn, source), "reason": reason})  # fmt: skip

    def chunking(self, sources: Sequence[str] | None = None) -> list[Stream]:
        rows = self.conn.execute(statement("chunking_streams"),
                                 {"sources": None if sources is None else list(sources)})  # fmt: skip
        return [_stream(row[0], row[1:]) for row in rows]

    def names(self) -> set[str]:
        return {name for (name,) in self.conn.execute(statement("stream_names"))}


def _ended(conn: psycopg.Connection, source: str, batch_rows: int,
           action: str) -> tuple[int, Stream | None]:  # fmt: skip
    """The source's id and stream, once its progress row is held (inside the caller's
    transaction: no chunk is applied meanwhile) and it is known not to be live."""
    sid = source_id(conn, source)
    conn.execute(statement("lock_detector_state"), {"sid": sid})
    stream = PgStreamRegistry(conn).stream(source)
    progress = PgDetectorState(conn).progress_of(source)
    reason = live_refusal(source, stream, progress, batch_rows, action)
    if reason is not None:
        raise TxnpipeError(reason)
    return sid, stream


def purge(conn: psycopg.Connection, source: str, batch_rows: int) -> Purge:
    """Remove an ended stream's history, aggregates, customers and weights, keeping its
    chunk log and detection outbox, in one transaction that holds the detector's progress
    row (no chunk is applied meanwhile); raises ``TxnpipeError`` for a live stream."""
    with conn.transaction():
        sid, stream = _ended(conn, source, batch_rows, "purged")
        if stream is not None and stream.status is Status.PURGED:
            return Purge(source, dict.fromkeys(PURGED_TABLES, 0), already=True)
        row = conn.execute(statement("purge_source"), {"sid": sid}).fetchone()
        assert row is not None
        if conn.execute(statement("mark_purged"), {"sid": sid}).fetchone() is None:
            conn.execute(statement("register_purged"), {"sid": sid})
    return Purge(source, dict(zip(PURGED_TABLES, map(int, row))))


def restart(conn: psycopg.Connection, store: ObjectStore, source: str, prefixes: InputPrefixes,
            batch_rows: int) -> Registration:  # fmt: skip
    """Start an ended (or failed, or purged) stream again from its input as the bucket holds
    it now, with the newest importance file: its state goes and it is registered anew, in
    one transaction holding its progress row. Raises ``TxnpipeError`` for a live stream."""
    with conn.transaction():
        sid, stream = _ended(conn, source, batch_rows, "restarted")
        if stream is None or stream.input_key is None:
            raise TxnpipeError(f"stream {source!r} was never registered from an input: put its "
                               f"file under {prefixes.transactions!r} instead")  # fmt: skip
        conn.execute(statement("reset_source"), {"sid": sid})
        registration = register_input(store, PgStreamRegistry(conn), stream.input_key, None, prefixes,
                                      stream.restarts + 1)  # fmt: skip
        if registration.outcome != "registered":
            raise TxnpipeError(f"stream {source!r} cannot start again: {registration.reason}")
    return registration
