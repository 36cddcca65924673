"""A local run's hold on its streams in one database (SPEC 5: a second run is refused).

The hold is a session-level advisory lock per source, on a connection of its own that lives
as long as the run: PostgreSQL releases it the moment that connection ends, so a run that
crashed or was killed never blocks the next one, and nothing needs clearing by hand. Who
holds it is written beside it (``txnpipe.run_leases``), so that the refused run can say.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg

from txnpipe.adapters import pgstore
from txnpipe.errors import RunFailed, TxnpipeError

_RUN_LOCK = 7_301_003


class SourceBusy(TxnpipeError):
    """Another live run processes this source in this database."""


class RunLease:
    def __init__(self, url: str, sources: Sequence[str], holder: str) -> None:
        self.url = url
        self.sources = tuple(sources)
        self.holder = holder
        self._conn: psycopg.Connection | None = None

    def acquire(self) -> None:
        """Take every source, or none: refused with the holder's description."""
        conn = pgstore.connect(self.url)
        try:
            for source in self.sources:
                sid = pgstore.source_id(conn, source)
                row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (_RUN_LOCK, sid)).fetchone()
                if not (row and row[0]):
                    held = conn.execute(
                        "SELECT holder FROM txnpipe.run_leases WHERE source_id = %s", (sid,)
                    ).fetchone()
                    who = held[0] if held else "another txnpipe run"
                    raise SourceBusy(f"source {source!r} is being processed by {who} in this "
                                     "database; wait for it to end, or stop it")  # fmt: skip
                conn.execute(
                    "INSERT INTO txnpipe.run_leases (source_id, holder) VALUES (%s, %s)"
                    " ON CONFLICT (source_id) DO UPDATE SET holder = EXCLUDED.holder,"
                    " since = now()",
                    (sid, self.holder),
                )
        except BaseException:
            conn.close()  # releases whatever was taken
            raise
        self._conn = conn

    def check(self) -> None:
        """Take the hold again after the connection was lost (a database restart), or fail
        the run: it must not go on while another run may have taken its sources."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return
        try:
            self.acquire()
        except SourceBusy as exc:
            raise RunFailed(f"lost the hold on its sources while the database was away: {exc}")

    def release(self) -> None:
        if self._conn is None or self._conn.closed or self._conn.broken:
            return
        try:
            for source in self.sources:
                sid = pgstore.source_id(self._conn, source)
                self._conn.execute(
                    "DELETE FROM txnpipe.run_leases WHERE source_id = %s AND holder = %s",
                    (sid, self.holder),
                )
        except psycopg.Error:
            pass  # the database is gone: the lock went with the connection
        finally:
            self._conn.close()


@contextmanager
def held(url: str, sources: Sequence[str], holder: str) -> Iterator[RunLease]:
    lease = RunLease(url, sources, holder)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()
