"""Numbered migrations: ``migrations/NNN_name.sql``, applied in order, each once.

``txnpipe.migrations`` records what a database holds. A database made before migrations
were numbered is recognised by its layout (0.1, 0.2, 0.3) and migrated from there. All
pending migrations run in one transaction under an advisory lock, so concurrent cold starts
never race and a failed one changes nothing. A connection to a database that is current (or
newer: a deploy rolled back) runs no DDL at all, which is what lets the deployed functions
use roles that may not change the schema.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources

import psycopg
from psycopg import sql

from txnpipe.core.errors import TxnpipeError
from txnpipe.postgres.statements import statement

# The database roles of the deployed functions (``roles.sql``): the chunker's may touch
# only the pointer tables, the detector's only its own.
CHUNKER_ROLE = "txnpipe_chunker"
DETECTOR_ROLE = "txnpipe_detector"
_FILE = re.compile(r"(\d{3})_(\w+)\.sql")


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    ddl: str


@cache
def migrations() -> tuple[Migration, ...]:
    folder = resources.files("txnpipe.postgres").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if m := _FILE.fullmatch(entry.name):
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    found.sort(key=lambda m: m.number)
    if [m.number for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations are not numbered 1..n: {[m.number for m in found]}")
    return tuple(found)


LATEST = len(migrations())


def applied(conn: psycopg.Connection) -> int:
    """The last migration the database holds (0: none; a database from before numbered
    migrations counts as the layout it has)."""
    row = conn.execute(statement("migrations_table_exists")).fetchone()
    if row and row[0]:
        number = conn.execute(statement("applied_migration")).fetchone()
        if number and number[0] is not None:
            return int(number[0])
    exists, has_w, has_n_before = conn.execute(statement("layout_before_migrations")).fetchone()
    return 0 if not exists else 1 if not has_w else 2 if not has_n_before else 3


@contextmanager
def _schema_lock(conn: psycopg.Connection) -> Iterator[None]:
    conn.execute(statement("schema_lock"))
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute(statement("schema_unlock"))


def ensure_schema(conn: psycopg.Connection) -> None:
    """Apply what is pending; a role that may not change the schema (the deployed functions')
    gets a clear error instead."""
    version = applied(conn)
    if version >= LATEST:
        return
    row = conn.execute(statement("may_migrate")).fetchone()
    if not (row and row[0]):
        raise _not_migrated(version)
    try:
        with _schema_lock(conn), conn.transaction():
            version = applied(conn)  # another session may have migrated meanwhile
            if version >= LATEST:
                return
            conn.execute(statement("migrations_table"))
            for m in migrations():
                if m.number > version:
                    conn.execute(m.ddl)
                    conn.execute(statement("record_migration"), {"number": m.number, "name": m.name})
    except psycopg.errors.InsufficientPrivilege:
        raise _not_migrated(version) from None


def _not_migrated(version: int) -> TxnpipeError:
    return TxnpipeError(
        f"the database's txnpipe schema holds migration {version}, this code needs {LATEST}, "
        "and this role may not migrate it: run the migration (a deploy does, through its "
        "migrator function)"
    )


def migrate(conn: psycopg.Connection, role_passwords: Mapping[str, str] | None = None) -> None:
    """The deployment's migration, run with the master credentials: the schema, then the two
    function roles with only their own tables (``roles.sql``), and each role's password when
    given (role name -> password, from the role's own secret)."""
    ensure_schema(conn)
    grants = resources.files("txnpipe.postgres").joinpath("roles.sql").read_text()
    with _schema_lock(conn), conn.transaction():
        conn.execute(grants)
        for role, password in (role_passwords or {}).items():
            if role not in (CHUNKER_ROLE, DETECTOR_ROLE):
                raise ValueError(f"{role!r} is not a txnpipe function role")
            alter = sql.SQL(statement("set_role_password"))  # type: ignore[arg-type]
            conn.execute(alter.format(role=sql.Identifier(role), password=sql.Literal(password)))
