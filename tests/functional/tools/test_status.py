"""``txnpipe status`` on real PostgreSQL: after a full run, part-way through, and on errors."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit
from tests.reference import reference_detections_by_point
from txnpipe import postgres
from txnpipe.core.errors import TxnpipeError
from txnpipe.local.inputs import InputFiles
from txnpipe.local.runner import RunOptions, run
from txnpipe.tools.cli import main
from txnpipe.tools.status import collect


def _expected_by_point() -> list[list[tuple[str, str, str, str]]]:
    ds = dataset()
    return reference_detections_by_point(
        ds.transactions.read_bytes(), ds.importance.read_bytes(), ds.settings.as_dict()
    )


def test_status_after_a_full_run(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    ds = dataset()
    opts = RunOptions(InputFiles.check(ds.transactions, ds.importance), tmp_path, ds.settings,
                      fast=True, database_url=database_url, s3_endpoint=s3_endpoint,
                      bucket=bucket)  # fmt: skip
    summary = run(opts)
    points = _expected_by_point()
    expected = Counter(row[0] for point in points for row in point)
    total = sum(expected.values())
    batch = ds.settings.detection_batch_rows

    report = collect(database_url, batch)
    assert [s.source for s in report.sources] == [opts.inputs.sources[0]]
    s = report.sources[0]
    assert s.state == "ended" and s.ended
    assert s.chunks_written == s.total_chunks == s.chunks_applied == len(points) == summary.chunks
    assert s.chunker_done
    assert s.chunks_pending == 0 and s.chunks_landed_waiting == 0
    assert s.records_read == s.records_applied == 12_000
    assert s.rejects == summary.rejects > 0
    assert s.detections == total == sum(summary.detections.values())
    patterns = ("PatId1", "PatId2", "PatId3")
    assert s.detections_by_pattern == {p: expected.get(p, 0) for p in patterns}
    assert all(s.detections_by_pattern.values())  # the data set fires every pattern
    assert s.detection_files == summary.files == -(-total // batch)
    assert s.detections_in_files == total and s.detections_pending == 0
    assert s.lag_kind == "last applied chunk" and s.lag_seconds is not None
    assert 0 <= s.lag_seconds < 60
    assert s.last_applied_chunk == len(points) - 1

    # The CLI: JSON carries the same numbers; the table names the source and its state.
    assert main(["status", "--database-url", database_url, "--json",
                 "--set", f"detection_batch_rows={batch}"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    (row,) = doc["sources"]
    assert row["source"] == s.source and row["ended"] is True
    assert row["chunks_applied"] == len(points) and row["detections"] == total
    assert row["detections_in_files"] == total and row["detections_pending"] == 0
    assert row["detections_by_pattern"] == s.detections_by_pattern
    assert "password" not in json.dumps(doc).lower()

    assert main(["status", "--database-url", database_url,
                 "--set", f"detection_batch_rows={batch}"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert s.source in out and "ended" in out and f"{total:,}" in out


def test_status_part_way_through(database_url: str, s3_endpoint: str, bucket: str) -> None:
    """Chunker done, detector fed some events (one out of order), then the rest."""
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    n = kit.write_all_chunks()
    keys = kit.chunk_keys(n)  # chunks, then the manifest
    kit.hold(keys)  # each lands with its event
    batch = ds.settings.detection_batch_rows
    points = _expected_by_point()
    assert n == len(points) == 24

    def status():  # type: ignore[no-untyped-def]
        (s,) = collect(database_url, batch).sources
        return s

    s = status()  # only mechanism X has run
    assert (s.chunks_written, s.chunker_done, s.chunks_applied) == (n, True, 0)
    assert s.total_chunks is None and s.chunks_pending == n and s.detections == 0
    assert s.lag_seconds is None and not s.ended

    with postgres.connect(database_url) as conn:
        kit.deliver(conn, keys[:10] + [keys[12]])  # chunk 12 lands early and waits
        s = status()
        first = [row for point in points[:10] for row in point]
        assert s.chunks_applied == 10 and s.chunks_landed_waiting == 1
        assert s.chunks_pending == n - 10 and s.total_chunks is None
        assert s.records_applied == 5_000
        assert s.detections == len(first) > batch
        assert s.detections_by_pattern == {
            p: sum(r[0] == p for r in first) for p in ("PatId1", "PatId2", "PatId3")
        }
        assert s.detection_files == len(first) // batch  # only full files so far
        assert s.detections_in_files == batch * (len(first) // batch)
        assert s.detections_pending == len(first) % batch
        assert s.lag_kind == "oldest waiting chunk" and s.lag_seconds is not None
        assert s.lag_seconds >= 0
        assert s.state == "applying" and not s.ended

        kit.deliver(conn, keys[10:12] + keys[13:n - 1] + [keys[-1]])  # all but the last chunk
        s = status()
        assert s.total_chunks == n and s.chunks_applied == n - 1
        assert s.chunks_pending == 1 and s.chunks_landed_waiting == 0
        assert s.lag_kind == "last applied chunk"
        assert not s.ended

        kit.deliver(conn, [keys[n - 1]])
        s = status()
        total = sum(len(point) for point in points)
        assert s.ended and s.state == "ended" and s.chunks_pending == 0
        assert s.detections == s.detections_in_files == total and s.detections_pending == 0
        assert s.detection_files == -(-total // batch)


def test_status_of_one_source_and_of_a_source_that_is_not_there(database_url: str) -> None:
    with postgres.connect(database_url) as conn:
        postgres.source_id(conn, "b")
        postgres.source_id(conn, "a")
    report = collect(database_url)
    assert [s.source for s in report.sources] == ["a", "b"]
    assert all(s.state == "not started" for s in report.sources)
    assert [s.source for s in collect(database_url, source="b").sources] == ["b"]
    with pytest.raises(TxnpipeError, match="no source named"):
        collect(database_url, source="x'; DROP SCHEMA txnpipe CASCADE; --")
    assert [s.source for s in collect(database_url).sources] == ["a", "b"]


def test_status_of_an_empty_schema_prints_no_sources(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres.connect(database_url).close()
    assert main(["status", "--database-url", database_url]) == 0
    assert "no sources" in capsys.readouterr().out
    assert main(["status", "--database-url", database_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sources"] == []


def test_status_of_a_database_without_the_schema_is_one_line_exit_2(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--database-url", database_url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("txnpipe: error: ")
    assert "has no txnpipe schema" in err
    with psycopg.connect(database_url) as conn:  # status never creates it
        assert conn.execute("SELECT to_regnamespace('txnpipe')").fetchone() == (None,)


@pytest.mark.parametrize(
    "url", ["postgresql://nobody:secret@127.0.0.1:1/nothing", "host=/nonexistent-dir dbname=x",
            "not a url at all"],
)  # fmt: skip
def test_status_of_an_unreachable_database_is_one_line_exit_2(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("txnpipe: error: cannot reach the database")
    assert "secret" not in err


def test_status_needs_a_database_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TXNPIPE_DATABASE_URL", raising=False)
    assert main(["status"]) == 2
    assert "--database-url" in capsys.readouterr().err
