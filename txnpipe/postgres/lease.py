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

from txnpipe.core.errors import RunFailed, TxnpipeError
from txnpipe.postgres.connection import connect, source_id
from txnpipe.postgres.statements import statement


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
        conn = connect(self.url)
        try:
            for source in self.sources:
                sid = {"sid": source_id(conn, source)}
                row = conn.execute(statement("run_lease_lock"), sid).fetchone()
                if not (row and row[0]):
                    held = conn.execute(statement("run_lease_holder"), sid).fetchone()
                    who = held[0] if held else "another txnpipe run"
                    raise SourceBusy(f"source {source!r} is being processed by {who} in this "
                                     "database; wait for it to end, or stop it")  # fmt: skip
                conn.execute(statement("run_lease_claim"), {**sid, "holder": self.holder})
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
                self._conn.execute(statement("run_lease_release"), {
                    "sid": source_id(self._conn, source), "holder": self.holder})  # fmt: skip
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
