from __future__ import annotations

import pytest

from txnpipe.core.rules.percentiles import (
    EPS,
    at_most,
    interpolate,
    least_count_at_least,
    percentile_cont,
    percentile_ranks,
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


def test_at_most_allows_epsilon() -> None:
    assert at_most(1.0 + 1e-10, 1.0) and not at_most(1.0 + 1e-8, 1.0)


@pytest.mark.parametrize("t", [3.0, 3.0 + 1e-10, 3.0 - 1e-10, 2.5, 3.000001, 0.0, 97.03])
def test_least_count_is_the_exact_integer_bound(t: float) -> None:
    bound = least_count_at_least(t)
    assert bound >= t - EPS and not bound - 1 >= t - EPS


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.99, 1.0])
def test_two_ranks_give_the_whole_percentile(p: float) -> None:
    values = sorted([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.5])
    lo, hi, fraction = percentile_ranks(p, len(values))
    assert interpolate(values[lo], values[hi], fraction) == percentile_cont(values, p)
