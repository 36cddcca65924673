from __future__ import annotations

from datetime import datetime, timezone

import pytest

from txnpipe.detections import Detection, detections_csv, files_due, ist_iso
from txnpipe.rules import (
    PairStats,
    at_least,
    at_most,
    child,
    dei_needed,
    interpolate,
    least_count_at_least,
    less,
    percentile_cont,
    percentile_ranks,
    upgrade_customers,
)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [([1, 2, 3, 4], 0.99, 3.97), ([1, 2, 3, 4], 0.2, 1.6), ([5], 0.5, 5.0), ([3, 1, 2], 0.5, 2.0),
     ([1, 2], 0.0, 1.0), ([1, 2], 1.0, 2.0)],
)  # fmt: skip
def test_percentile_cont_interpolates_like_postgres(values: list[float], p: float, expected: float) -> None:
    assert percentile_cont(values, p) == pytest.approx(expected, abs=1e-12)


def test_percentile_of_nothing_is_none() -> None:
    assert percentile_cont([], 0.5) is None


def test_epsilon_comparisons() -> None:
    assert not less(20.0, 20.0) and not less(20.0 - 1e-10, 20.0) and less(19.999999, 20.0)
    assert at_most(1.0 + 1e-10, 1.0) and not at_most(1.0 + 1e-8, 1.0)
    assert at_least(2.0 - 1e-10, 2.0) and not at_least(2.0 - 1e-8, 2.0)


def test_child_and_dei_boundaries() -> None:
    assert child(PairStats(80, 80 * 19.99, 0, 0), 80, 20)
    assert not child(PairStats(80, 80 * 20.0, 0, 0), 80, 20)
    assert not child(PairStats(79, 79.0, 0, 0), 80, 20)
    assert not dei_needed(1000, 10000, 1000, 0.1)  # 1000 < 1000 is false
    assert dei_needed(1000, 10001, 1000, 0.1)
    assert not dei_needed(999, 100000, 1000, 0.1)


def test_upgrade_needs_top_count_and_low_weight() -> None:
    pairs = {
        "A": PairStats(10, 0, 1.0, 1),  # top count, lowest weight
        "B": PairStats(10, 0, 9.0, 1),  # top count, heavy
        "C": PairStats(1, 0, 1.0, 1),
        "D": PairStats(1, 0, 0, 0),  # no weight at all
    }
    assert upgrade_customers(pairs, 0.5, 0.2) == ["A"]


def _d(chunk: int, pattern: int, merchant: str, customer: str) -> Detection:
    t = datetime(2026, 11, 29, 3, 35, 3, 123456, tzinfo=timezone.utc)
    return Detection(chunk, pattern, merchant, customer, t, t)


def test_order_is_point_pattern_merchant_customer_by_code_point() -> None:
    rows = [_d(1, 1, "M", "a"), _d(0, 3, "M", ""), _d(0, 2, "b", "x"), _d(0, 2, "B", "x"),
            _d(0, 2, "É", "x"), _d(0, 2, "Z", "y"), _d(0, 2, "Z", "x")]  # fmt: skip
    ordered = sorted(rows, key=Detection.sort_key)
    assert [(d.chunk, d.pattern, d.merchant, d.customer) for d in ordered] == [
        (0, 2, "B", "x"), (0, 2, "Z", "x"), (0, 2, "Z", "y"), (0, 2, "b", "x"), (0, 2, "É", "x"),
        (0, 3, "M", ""), (1, 1, "M", "a"),
    ]  # fmt: skip


def test_ist_timestamp_format() -> None:
    t = datetime(2026, 11, 29, 3, 35, 3, 123999, tzinfo=timezone.utc)
    assert ist_iso(t) == "2026-11-29T09:05:03.123+05:30"


def test_csv_has_the_spec_header_and_empty_customer_for_patid3() -> None:
    text = detections_csv([_d(0, 3, "M1", ""), _d(0, 1, "M,2", "C1")]).decode()
    lines = text.splitlines()
    assert lines[0] == "YStartTime,detectionTime,patternId,ActionType,customerName,MerchantId"
    assert lines[1].endswith(",PatId3,DEI-NEEDED,,M1")
    assert lines[2].endswith(',PatId1,UPGRADE,C1,"M,2"')


@pytest.mark.parametrize(
    ("total", "written", "ended", "due"),
    [(250, 0, False, [0, 1]), (250, 2, False, []), (250, 2, True, [2]), (250, 3, True, []),
     (200, 2, True, []), (0, 0, True, []), (99, 0, True, [0])],
)  # fmt: skip
def test_files_due(total: int, written: int, ended: bool, due: list[int]) -> None:
    assert files_due(total, written, 100, ended) == due


@pytest.mark.parametrize("t", [3.0, 3.0 + 1e-10, 3.0 - 1e-10, 2.5, 3.000001, 0.0, 97.03])
def test_least_count_is_the_exact_integer_bound(t: float) -> None:
    bound = least_count_at_least(t)
    assert at_least(bound, t) and not at_least(bound - 1, t)


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.99, 1.0])
def test_two_ranks_give_the_whole_percentile(p: float) -> None:
    values = sorted([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.5])
    lo, hi, fraction = percentile_ranks(p, len(values))
    assert interpolate(values[lo], values[hi], fraction) == percentile_cont(values, p)
