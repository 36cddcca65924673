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
    """In the caller's transaction; a chunk in the history already is left as it is."""
    if not transactions:
        return
    conn.execute(statement("create_staged"))
    with conn.cursor().copy(statement("copy_staged")) as copy:
        copy.write(copy_text(transactions))
    params = {"sid": sid, "chunk": chunk, "first": transactions[0].record,
              "by_merchant": by_merchant}  # fmt: skip
    try:
        with conn.transaction():  # a savepoint, for the race below
            conn.execute(statement("stage_history"), params)
    except psycopg.errors.UniqueViolation:
        pass  # another detector wrote the same chunk at the same moment, and committed it
