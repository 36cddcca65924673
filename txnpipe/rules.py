"""Pattern rules of SPEC 4.2: ``percentile_cont`` and the ε comparisons.

The PostgreSQL store evaluates the same rules in SQL (``pgstore.sql``); these pure forms
serve the batch engines and state the semantics where a test can pin them down.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

EPS = 1e-9

PATTERNS: dict[int, tuple[str, str]] = {
    1: ("PatId1", "UPGRADE"),
    2: ("PatId2", "CHILD"),
    3: ("PatId3", "DEI-NEEDED"),
}


def percentile_ranks(p: float, count: int) -> tuple[int, int, float]:
    """The two 0-based ranks ``percentile_cont(p)`` reads among ``count`` sorted values.

    Knowing them up front lets a store fetch just those two values through an index
    instead of sorting every customer of a merchant.
    """
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


def less(x: float, t: float) -> bool:
    return x < t - EPS


def at_most(x: float, t: float) -> bool:
    return x <= t + EPS


def at_least(x: float, t: float) -> bool:
    return x >= t - EPS


def least_count_at_least(t: float) -> int:
    """The smallest integer n with ``at_least(n, t)``: an index range bound for counts."""
    return math.ceil(t - EPS)


@dataclass(frozen=True)
class PairStats:
    n: int
    value_sum: float
    weight_sum: float
    weighted: int

    @property
    def mean_weight(self) -> float | None:
        return self.weight_sum / self.weighted if self.weighted else None


def child(pair: PairStats, min_txns: int, max_avg: float) -> bool:
    return pair.n >= min_txns and less(pair.value_sum / pair.n, max_avg)


def dei_needed(females: int, males: int, min_females: int, max_ratio: float) -> bool:
    return females >= min_females and less(females, max_ratio * males)


def upgrade_customers(
    pairs: dict[str, PairStats], count_p: float, weight_p: float
) -> list[str]:
    """Customers of one merchant (already past the N(m) threshold) that PatId1 detects."""
    tn = percentile_cont([float(p.n) for p in pairs.values()], count_p)
    tw = percentile_cont(
        [w for p in pairs.values() if (w := p.mean_weight) is not None], weight_p
    )
    if tn is None or tw is None:
        return []
    return [
        customer
        for customer, p in pairs.items()
        if at_least(p.n, tn) and p.mean_weight is not None and at_most(p.mean_weight, tw)
    ]
