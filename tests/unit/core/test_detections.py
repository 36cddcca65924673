from __future__ import annotations

from datetime import UTC, datetime

import pytest

from txnpipe.core.detections import (
    Detection,
    RecordedDetection,
    detections_csv,
    files_due,
    first_detections,
    in_files,
    ist_iso,
    ordered,
)
from txnpipe.core.rules import CATALOGUE, ThresholdRule
from txnpipe.core.rules.aggregates import PAIR_TXNS
from txnpipe.core.rules.expressions import Const, at_least


def _recorded(chunk: int, pattern: int, merchant: str, customer: str) -> RecordedDetection:
    t = datetime(2026, 11, 29, 3, 35, 3, 123456, tzinfo=UTC)
    return RecordedDetection(chunk, pattern, merchant, customer, t, t)


def test_order_is_point_pattern_merchant_customer_by_code_point() -> None:
    rows = [Detection(1, 1, "M", "a"), Detection(0, 3, "M", ""), Detection(0, 2, "b", "x"),
            Detection(0, 2, "B", "x"), Detection(0, 2, "É", "x"), Detection(0, 2, "Z", "y"),
            Detection(0, 2, "Z", "x")]  # fmt: skip
    assert ordered(rows) == [
        (0, 2, "B", "x"), (0, 2, "Z", "x"), (0, 2, "Z", "y"), (0, 2, "b", "x"), (0, 2, "É", "x"),
        (0, 3, "M", ""), (1, 1, "M", "a"),
    ]  # fmt: skip


def test_ist_timestamp_format() -> None:
    t = datetime(2026, 11, 29, 3, 35, 3, 123999, tzinfo=UTC)
    assert ist_iso(t) == "2026-11-29T09:05:03.123+05:30"


def test_csv_has_the_spec_header_and_empty_customer_for_a_merchant_rule() -> None:
    text = detections_csv([_recorded(0, 3, "M1", ""), _recorded(0, 1, "M,2", "C1")]).decode()
    lines = text.splitlines()
    assert lines[0] == "YStartTime,detectionTime,patternId,ActionType,customerName,MerchantId"
    assert lines[1].endswith(",PatId3,DEI-NEEDED,,M1")
    assert lines[2].endswith(',PatId1,UPGRADE,C1,"M,2"')


def test_a_pattern_added_to_the_catalogue_is_labelled_from_it() -> None:
    extra = CATALOGUE.with_rules(ThresholdRule(7, "REGULAR", "pair", at_least(PAIR_TXNS, Const(3))))
    assert detections_csv([_recorded(0, 7, "M", "C")], extra).decode().endswith(
        ",PatId7,REGULAR,C,M\n"
    )
    with pytest.raises(KeyError, match="no pattern 7"):
        detections_csv([_recorded(0, 7, "M", "C")])


@pytest.mark.parametrize(
    ("total", "written", "ended", "due"),
    [(250, 0, False, [0, 1]), (250, 2, False, []), (250, 2, True, [2]), (250, 3, True, []),
     (200, 2, True, []), (0, 0, True, []), (99, 0, True, [0])],
)  # fmt: skip
def test_files_due(total: int, written: int, ended: bool, due: list[int]) -> None:
    assert files_due(total, written, 100, ended) == due


def test_first_points_and_files() -> None:
    candidates = [(5, "M", "C"), (3, "M", "C"), (4, "M", "D")]
    found = first_detections(candidates)
    assert sorted(found) == [Detection(3, 1, "M", "C"), Detection(4, 1, "M", "D")]
    files = in_files(found + [Detection(0, 2, "M", "E")], 2)
    assert files == [[("PatId2", "CHILD", "E", "M"), ("PatId1", "UPGRADE", "C", "M")],
                     [("PatId1", "UPGRADE", "D", "M")]]  # fmt: skip
