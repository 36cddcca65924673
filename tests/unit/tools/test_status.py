"""``txnpipe status``'s pure parts: naming the database, and a source's state from its row."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from txnpipe.core.errors import TxnpipeError
from txnpipe.tools.status import _source_status, describe_url

NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


def test_the_database_is_named_without_its_password() -> None:
    assert describe_url("postgresql://alice:s3cret@db.example:5433/bank") == (
        "alice@db.example:5433/bank"
    )
    assert describe_url("host=/run/pg dbname=x password=s3cret") == "[/run/pg]/x"
    with pytest.raises(TxnpipeError, match="bad --database-url"):
        describe_url("not a url at all")


def _row(**kw: object) -> tuple[object, ...]:
    v = {
        "name": "bank", "has_chunker": True, "written": 10, "records_read": 10_000,
        "chunker_done": True, "chunker_at": NOW, "has_detector": True, "applied": 10,
        "total": 10, "total_records": 10_000, "detections": 250, "files": 3,
        "upgrade_through": None, "upgrade_run": None, "weights_rows": 40, "weights_skipped": 2,
        "waiting": 0, "oldest_arrival": None,
        "last_chunk": 9, "last_arrived": NOW - timedelta(seconds=2),
        "last_y_start": NOW - timedelta(seconds=1), "last_applied": NOW,
        "records_applied": 10_000, "rejects": 3,
        **kw,
    }  # fmt: skip
    return tuple(v.values())


def test_a_finished_stream_has_ended_once_its_last_file_is_written() -> None:
    s = _source_status(_row(), {"PatId2": 250}, NOW, 100)
    assert s.ended and s.state == "ended"
    assert (s.importance_rows, s.importance_skipped) == (40, 2)
    assert (s.detections_in_files, s.detections_pending) == (250, 0)
    assert s.lag_kind == "last applied chunk" and s.lag_seconds == 2.0
    assert s.detections_by_pattern == {"PatId1": 0, "PatId2": 250, "PatId3": 0}

    s = _source_status(_row(files=2), {}, NOW, 100)
    assert not s.ended and s.state == "flushing"
    assert (s.detections_in_files, s.detections_pending) == (200, 50)


def test_a_stream_waiting_for_a_pattern1_batch_run_has_not_ended() -> None:
    s = _source_status(_row(upgrade_through=6, upgrade_run="jr_1"), {}, NOW, 100)
    assert not s.ended and s.upgrade_run == "jr_1"
    assert _source_status(_row(upgrade_through=9), {}, NOW, 100).ended


def test_lag_is_the_age_of_the_oldest_landed_chunk_while_any_waits() -> None:
    s = _source_status(
        _row(applied=7, waiting=2, oldest_arrival=NOW - timedelta(seconds=30)), {}, NOW, 100
    )
    assert s.lag_kind == "oldest waiting chunk" and s.lag_seconds == 30.0
    assert s.chunks_pending == 3 and s.chunks_landed_waiting == 2 and s.state == "applying"


def test_pending_counts_chunks_written_before_the_manifest_is_seen() -> None:
    s = _source_status(_row(written=12, chunker_done=False, applied=5, total=None), {}, NOW, 100)
    assert s.chunks_pending == 7 and s.total_chunks is None and not s.ended
    s = _source_status(
        _row(has_chunker=False, written=None, has_detector=False, applied=None, total=None,
             detections=None, files=None, last_chunk=None, last_arrived=None,
             last_applied=None),
        {}, NOW, 100,
    )  # fmt: skip
    assert s.state == "not started" and s.lag_seconds is None and s.chunks_pending == 0
