"""Connections, and the sources every table is keyed by."""
from __future__ import annotations

import psycopg

from txnpipe.postgres.migrations import ensure_schema
from txnpipe.postgres.statements import statement

# Unless the URL says otherwise: a connection attempt gives up after 10 s, and a connection
# whose server went silent is found dead within about a minute (TCP keepalives), so that a
# lost database becomes an error to retry instead of a hang.
_CONNECT_DEFAULTS = {"connect_timeout": "10", "keepalives": "1", "keepalives_idle": "30",
                     "keepalives_interval": "10", "keepalives_count": "3"}  # fmt: skip


def connect(url: str) -> psycopg.Connection:
    """Autocommit, with explicit transactions; no server-side prepares (RDS Proxy pinning);
    the schema migrated to this version."""
    params = {**_CONNECT_DEFAULTS, **psycopg.conninfo.conninfo_to_dict(url)}
    conn = psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True,
                           prepare_threshold=None)  # fmt: skip
    ensure_schema(conn)
    return conn


def source_id(conn: psycopg.Connection, source: str) -> int:
    """The source's id, registering it on first sight (one look-up once it is known)."""
    row = conn.execute(statement("find_source"), {"name": source}).fetchone()
    if row is None:
        conn.execute(statement("register_source"), {"name": source})
        row = conn.execute(statement("find_source"), {"name": source}).fetchone()
    assert row is not None
    return int(row[0])


def reset_source(conn: psycopg.Connection, source: str) -> None:
    """Forget a source's state entirely, so a local replay starts from chunk 0."""
    with conn.transaction():
        conn.execute(statement("reset_source"), {"sid": source_id(conn, source)})
