"""``percentile_cont`` and the ε comparisons of SPEC 4.2, as every engine must compute them.

A percentile is read from two ranks of the sorted values and interpolated linearly, as
PostgreSQL computes it: the PostgreSQL engine reads just those two ranks through an index,
and these functions say which ranks and how they combine, to the bit.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

EPS = 1e-9  # SPEC 4.2: the float noise a comparison with a non-integer quantity allows


def percentile_ranks(p: float, count: int) -> tuple[int, int, float]:
    """The two 0-based ranks ``percentile_cont(p)`` reads among ``count`` sorted values, and
    the fraction between them."""
    pos = p * (count - 1)
    lo = math.floor(pos)
    return lo, math.ceil(pos), pos - lo


def interpolate(low: float, high: float, fraction: float) -> float:
    """PostgreSQL's float8 lerp, operation for operation, so thresholds match to the bit."""
    return low if fraction == 0 else low + (high - low) * fraction


def percentile_cont(values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between the two nearest ranks, as PostgreSQL computes it."""
    if not values:
        return None
    ordered = sorted(values)
    lo, hi, fraction = percentile_ranks(p, len(ordered))
    return interpolate(ordered[lo], ordered[hi], fraction)


def at_most(x: float, t: float) -> bool:
    """``x ≤ t`` with ε (PatId1's weight threshold)."""
    return x <= t + EPS


def least_count_at_least(t: float) -> int:
    """The smallest integer n with ``n ≥ t`` under ε: the count threshold ``Tn`` as an index
    range bound (``min_count``)."""
    return math.ceil(t - EPS)
