"""``txnpipe purge``: an ended stream's working state goes, what it did stays."""
from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.functional.cli_kit import run_fast
from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit
from txnpipe import postgres
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.streams import PURGED_TABLES
from txnpipe.tools.cli import main
from txnpipe.tools.status import collect

KEPT = ("chunk_log", "detections", "detector_state", "chunker_state")


def _rows(url: str, source: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        (sid,) = conn.execute("SELECT source_id FROM txnpipe.sources WHERE name = %s",
                              [source]).fetchone() or (None,)  # fmt: skip
        count = sql.SQL("SELECT count(*) FROM {} WHERE source_id = %s")
        return {t: conn.execute(count.format(sql.Identifier("txnpipe", t)), [sid]).fetchone()[0]
                for t in (*PURGED_TABLES, *KEPT)}  # fmt: skip


def _stream(database_url: str, s3_endpoint: str, bucket: str) -> tuple[Kit, list[str]]:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    kit.register()
    return kit, kit.chunk_keys(kit.write_all_chunks())


def test_purge_removes_an_ended_streams_state_and_keeps_its_log_and_outbox(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    kit, keys = _stream(database_url, s3_endpoint, bucket)
    with postgres.connect(database_url) as conn:
        kit.deliver(conn, keys)
        before = _rows(database_url, kit.source)
        assert all(before[t] > 0 for t in ("history", "pairs", "merchants", "customers", "weights"))
        purged = postgres.purge(conn, kit.source, kit.settings.detection_batch_rows)
        assert purged.removed == {t: before[t] for t in PURGED_TABLES} and not purged.already
        after = _rows(database_url, kit.source)
        assert {t: after[t] for t in PURGED_TABLES} == dict.fromkeys(PURGED_TABLES, 0)
        assert {t: after[t] for t in KEPT} == {t: before[t] for t in KEPT}
        assert postgres.purge(conn, kit.source, 100).already  # again: nothing to do
        (status,) = collect(database_url).sources
        assert (status.state, status.stream) == ("purged", "purged")
        assert status.detections == before["detections"]
        # a late duplicate event of a purged stream changes nothing
        kit.deliver(conn, keys[:2])
        assert _rows(database_url, kit.source) == after


def test_a_live_stream_is_not_purged(database_url: str, s3_endpoint: str, bucket: str) -> None:
    kit, keys = _stream(database_url, s3_endpoint, bucket)
    with postgres.connect(database_url) as conn:
        kit.deliver(conn, keys[:3])
        before = _rows(database_url, kit.source)
        with pytest.raises(TxnpipeError, match=r"is live \(3 chunks applied\)"):
            postgres.purge(conn, kit.source, 100)
        assert _rows(database_url, kit.source) == before
        with pytest.raises(TxnpipeError, match="no stream named 'nope'"):
            postgres.purge(conn, "nope", 100)


def test_purge_and_status_on_what_a_run_with_pg_data_leaves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As on what `make demo` leaves: the embedded server of --pg-data, started for the
    command and stopped after it."""
    ds = dataset()
    pg = tmp_path / "pgdata"
    assert run_fast(tmp_path, ds.transactions, ds.importance, "--pg-data", str(pg),
                    *[f"--set={k}={v}" for k, v in ds.settings.as_dict().items()]) == 0  # fmt: skip
    source = ds.transactions.stem
    capsys.readouterr()
    assert main(["purge", "--pg-data", str(pg), "--source", source]) == 0
    assert f"purged stream {source!r}: removed " in capsys.readouterr().out
    assert main(["status", "--pg-data", str(pg), "--json"]) == 0
    (status,) = json.loads(capsys.readouterr().out)["sources"]
    assert status["state"] == "purged" and status["detections"] > 0
    assert main(["purge", "--pg-data", str(pg), "--source", "nope"]) == 2
    assert "no stream named 'nope'" in capsys.readouterr().err
