"""The embedded PostgreSQL of a local run: its settings, and its data kept for `txnpipe status`."""
from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.functional.cli_kit import IMPORTANCE, SEED_HEADER, run_fast, write
from txnpipe.local import embedded_pg, services
from txnpipe.tools.cli import main


def test_status_on_the_kept_embedded_database_of_arun_fast(
    tmp_path: Path, s3_endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tx = write(tmp_path, "kept.csv", SEED_HEADER + "C1,M1,1,F,a\nC2,M1,2,M,a\n")
    imp = write(tmp_path, "imp.csv", IMPORTANCE)
    pg_data = tmp_path / "pgdata"
    assert run_fast(tmp_path, tx, imp, "--pg-data", str(pg_data), "--s3-endpoint", s3_endpoint,
                "--bucket", bucket) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["status", "--pg-data", str(pg_data), "--json"]) == 0
    (stream,) = json.loads(capsys.readouterr().out)["sources"]
    assert (stream["source"], stream["ended"], stream["chunks_applied"]) == ("kept", True, 1)


def test_embedded_server_settings_apply_at_every_start(tmp_path: Path) -> None:
    """The settings are the server's command line: the first start and the next have them."""
    for _ in range(2):
        with services.postgres(None, tmp_path / "pgdata") as url, psycopg.connect(url) as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
            row = conn.execute("SELECT setting::bigint * 8 / 1024 || 'MB' FROM pg_settings"
                               " WHERE name = 'shared_buffers'").fetchone()  # fmt: skip
            assert row == (services.embedded_settings()["shared_buffers"],)


@pytest.mark.parametrize("kept", [True, False])
def test_a_server_on_data_to_be_deleted_stops_without_a_shutdown_checkpoint(
    tmp_path: Path, kept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept directory gets a fast shutdown (its last commits written out); a temporary
    one an immediate shutdown, since it is deleted next: the server's log says which."""
    logs: list[str] = []
    release = embedded_pg.EmbeddedPostgres.release

    def release_and_read_log(self: embedded_pg.EmbeddedPostgres, *args: bool) -> None:
        release(self, *args)
        logs.append((self.data_dir / "log").read_text())

    monkeypatch.setattr(embedded_pg.EmbeddedPostgres, "release", release_and_read_log)
    with services.postgres(None, tmp_path / "pgdata" if kept else None) as url:
        psycopg.connect(url).close()
    (log,) = logs
    assert ("received fast shutdown request" in log) is kept
    assert ("received immediate shutdown request" in log) is not kept
