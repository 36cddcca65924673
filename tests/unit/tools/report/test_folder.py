"""txnpipe.tools.report.folder: detection rows read as the core's ``RecordedDetection``, each
at its evaluation point; rows that are not detections are named."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.tools.report.test_report import _y_start, make_run
from txnpipe.core.detections import IST, RecordedDetection, ist_iso
from txnpipe.core.errors import TxnpipeError
from txnpipe.tools.report import load_run
from txnpipe.tools.report.analysis import is_merchant_rule, label, patterns_of, title
from txnpipe.tools.report.folder import ChunkTiming, PointFinder, parse_detection

T0 = datetime(2026, 11, 29, 3, 0, 0, 123000, tzinfo=UTC)


def _finder(chunks: int) -> PointFinder:
    return PointFinder([ChunkTiming(k, None, T0 + timedelta(seconds=7 * k),
                                    T0 + timedelta(seconds=7 * k + 1), 10, 0, 0)
                        for k in range(chunks)])  # fmt: skip


def test_a_row_is_a_recorded_detection_with_the_catalogues_pattern_number() -> None:
    y = ist_iso(T0 + timedelta(seconds=7))
    later = ist_iso(T0 + timedelta(seconds=7, milliseconds=250))
    detection, exact = parse_detection([y, later, "PatId2", "CHILD", "C1", "M1"], _finder(3), "x")
    assert exact
    assert detection == RecordedDetection(1, 2, "M1", "C1", T0 + timedelta(seconds=7),
                                           T0 + timedelta(seconds=7, milliseconds=250))  # fmt: skip
    assert detection.row() == (y, later, "PatId2", "CHILD", "C1", "M1")  # the file's row again


def test_a_time_without_an_offset_is_ist() -> None:
    naive = (T0 + timedelta(seconds=14)).astimezone(IST).replace(tzinfo=None).isoformat()
    detection, exact = parse_detection([naive, naive, "PatId3", "DEI-NEEDED", "", "M2"],
                                       _finder(3), "x")  # fmt: skip
    assert exact and detection.chunk == 2 and detection.customer == ""
    assert detection.y_start == T0 + timedelta(seconds=14)


@pytest.mark.parametrize(
    "row, why",
    [(["yesterday", "2026-11-29T08:30:00.123+05:30", "PatId2", "CHILD", "C1", "M1"],
      "YStartTime 'yesterday' is not an ISO 8601 time"),
     (["2026-11-29T08:30:00.123+05:30", "", "PatId2", "CHILD", "C1", "M1"],
      "detectionTime '' is not an ISO 8601 time"),
     (["2026-11-29T08:30:00.123+05:30", "2026-11-29T08:30:00.123+05:30", "CHILD", "CHILD", "C1",
       "M1"], "'CHILD' is not a pattern id"),
     (["2026-11-29T08:30:00.123+05:30", "2026-11-29T08:30:00.123+05:30", "PatId0", "X", "C1",
       "M1"], "'PatId0' is not a pattern id")],
)  # fmt: skip
def test_a_row_that_is_not_a_detection_is_named(row: list[str], why: str) -> None:
    with pytest.raises(TxnpipeError, match="line 7: .*" + re.escape(why)):
        parse_detection(row, _finder(1), "'f.csv' line 7")


def test_a_bad_row_in_a_run_folder_names_its_file_and_line(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", 2, [(0, "PatId2", "C1", "M1")])
    path = next((run / "detections").rglob("*.csv"))
    y = ist_iso(_y_start(1))
    path.write_text(path.read_text() + f"{y},{y},PatIdX,CHILD,C2,M1\n")
    with pytest.raises(TxnpipeError, match=r"detections_000000\.csv' line 3: 'PatIdX'"):
        load_run(run)


def test_labels_come_from_the_catalogue_and_other_patterns_are_kept(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", 2, [(0, "PatId2", "C1", "M1"), (1, "PatId3", "", "M2")])
    path = next((run / "detections").rglob("*.csv"))
    y = ist_iso(_y_start(1))
    path.write_text(path.read_text() + f"{y},{y},PatId4,WHATEVER,C9,M9\n")
    data = load_run(run)
    assert [(d.chunk, d.pattern) for d in data.detections] == [(0, 2), (1, 3), (1, 4)]
    assert patterns_of(data) == [1, 2, 3, 4]
    assert [label(p) for p in (1, 2, 3, 4)] == [
        ("PatId1", "UPGRADE"), ("PatId2", "CHILD"), ("PatId3", "DEI-NEEDED"), ("PatId4", "")
    ]
    assert title(3) == "PatId3 DEI-NEEDED" and title(4) == "PatId4 "
    assert [is_merchant_rule(p) for p in (1, 2, 3, 4)] == [False, False, True, False]
