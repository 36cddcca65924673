"""A chunk's accepted records into the history (each with its weight) and its new customers:
what the detector's prefetch thread stages ahead of the apply, or the apply does itself."""
from __future__ import annotations

from collections.abc import Sequence

import psycopg

from txnpipe.core.layouts import Transaction
from txnpipe.postgres.escape import copy_text
from txnpipe.postgres.statements import statement


def write_history(
    conn: psycopg.Connection, sid: int, chunk: int, transactions: Sequence[Transaction],
    by_merchant: bool,
) -> None:  # fmt: skip
    """In the caller's transaction, unless the chunk is there already (staged, or written by
    a detector that then crashed)."""
    if not transactions or _has_record(conn, sid, transactions[0].record):
        return
    conn.execute(statement("create_staged"))
    with conn.cursor().copy(statement("copy_staged")) as copy:
        copy.write(copy_text(transactions))
    insert = "insert_history_by_merchant" if by_merchant else "insert_history_by_kind"
    conn.execute(statement(insert), {"sid": sid, "chunk": chunk})
    first, last = transactions[0].record, transactions[-1].record
    conn.execute(statement("new_customers"), {"sid": sid, "lo": first, "hi": last + 1})


def _has_record(conn: psycopg.Connection, sid: int, record: int) -> bool:
    row = conn.execute(statement("has_record"), {"sid": sid, "record": record}).fetchone()
    return bool(row and row[0])
