"""A run's services started side by side: the embedded PostgreSQL on a thread, the
in-process S3 endpoint here; whichever fails, nothing is left running."""
from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from txnpipe.core.errors import TxnpipeError
from txnpipe.local import embedded_pg, services


def _moto_servers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_server_entry" in t.name]


def test_both_answer_and_both_stop(tmp_path: Path) -> None:
    pg_data = tmp_path / "pg"
    before = _moto_servers()
    with services.started(None, pg_data, None, "a-bucket") as (db_url, endpoint):
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert "Buckets" in services.client("s3", endpoint).list_buckets()
        assert embedded_pg.attached_url(pg_data) is not None  # its server is running
        assert len(_moto_servers()) == len(before) + 1
    assert embedded_pg.attached_url(pg_data) is None
    assert _moto_servers() == before


def test_an_endpoint_that_fails_stops_the_server_started_meanwhile(tmp_path: Path) -> None:
    pg_data = tmp_path / "pg"
    with (pytest.raises(TxnpipeError, match="cannot reach the S3 endpoint"),
          services.started(None, pg_data, "http://127.0.0.1:1", "a-bucket")):  # fmt: skip
        pytest.fail("the block must not run")
    assert (pg_data / "PG_VERSION").is_file()  # it did start, on a thread
    assert embedded_pg.attached_url(pg_data) is None


def test_a_server_that_cannot_start_stops_the_endpoint(tmp_path: Path) -> None:
    pg_data = tmp_path / "pg"
    before = _moto_servers()
    with (services.postgres(None, pg_data),  # the directory is taken
          pytest.raises(embedded_pg.DataDirectoryBusy),
          services.started(None, pg_data, None, "a-bucket")):  # fmt: skip
        pytest.fail("the block must not run")
    assert _moto_servers() == before  # the endpoint started meanwhile has stopped
