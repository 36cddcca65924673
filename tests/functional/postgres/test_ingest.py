"""A chunk's history and customers are written once, however often and by however many
detectors it is written (``postgres/ingest.py``)."""
from __future__ import annotations

import threading
import time

import psycopg

from txnpipe import postgres
from txnpipe.core.layouts import Transaction
from txnpipe.postgres.ingest import write_history

CHUNK = [Transaction(10 + i, f"C{i % 3}", "M1", 1.5 + i, "FM"[i % 2], "food") for i in range(7)]


def _source(database_url: str) -> int:
    postgres.connect(database_url).close()  # migrated
    with psycopg.connect(database_url, autocommit=True) as conn:
        return postgres.source_id(conn, "s")


def _written(database_url: str, sid: int) -> tuple[int, list[tuple[str, str, int]]]:
    with psycopg.connect(database_url) as conn:
        history = conn.execute("SELECT count(*) FROM txnpipe.history WHERE source_id = %s",
                               (sid,)).fetchone()  # fmt: skip
        customers = conn.execute(
            "SELECT customer, gender, first_record FROM txnpipe.customers"
            " WHERE source_id = %s ORDER BY customer", (sid,)).fetchall()  # fmt: skip
    assert history is not None
    return history[0], customers


EXPECTED = (7, [("C0", "F", 10), ("C1", "M", 11), ("C2", "F", 12)])


def test_a_chunk_written_twice_is_in_the_history_once(database_url: str) -> None:
    sid = _source(database_url)
    for _ in range(2):
        with psycopg.connect(database_url) as conn, conn.transaction():
            write_history(conn, sid, 1, CHUNK, by_merchant=True)
    assert _written(database_url, sid) == EXPECTED


def test_a_detector_writing_the_same_chunk_at_the_same_moment_finds_it_written(
    database_url: str,
) -> None:
    """The second writer waits on the first's rows, then hits their key once the first
    commits: it takes the chunk as written, and its own transaction goes on."""
    sid = _source(database_url)
    errors: list[BaseException] = []
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        first.execute("SELECT 1")  # in a transaction from here on
        write_history(first, sid, 1, CHUNK, by_merchant=True)
        waiting = second.info.backend_pid

        def write_second() -> None:
            try:
                with second.transaction():
                    write_history(second, sid, 1, CHUNK, by_merchant=True)
                    second.execute("SELECT 1")  # the transaction is still usable
            except psycopg.Error as exc:  # handed to the test's thread
                errors.append(exc)

        thread = threading.Thread(target=write_second)
        thread.start()
        _wait_for_lock(database_url, waiting)
        first.commit()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    assert _written(database_url, sid) == EXPECTED


def _wait_for_lock(database_url: str, pid: int) -> None:
    """Until backend ``pid`` waits on a lock (the first writer's uncommitted rows)."""
    deadline = time.monotonic() + 30
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                               (pid,)).fetchone()  # fmt: skip
            if row is not None and row[0] == "Lock":
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited on the first writer's rows")
