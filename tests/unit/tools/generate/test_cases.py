"""txnpipe.tools.generate.cases: the planted cases sit where the rule catalogue's conditions,
at the default settings, put them (hit, or a miss by one record, one cent, one female, the
ratio's boundary)."""
from __future__ import annotations

import operator
import random
from collections import Counter
from decimal import Decimal

import pytest

from txnpipe.core.rules import CHILD, DEI_NEEDED, ThresholdRule, percentile_cont
from txnpipe.core.rules.expressions import Quantity, Setting, render
from txnpipe.core.settings import Settings
from txnpipe.tools.generate import cases
from txnpipe.tools.generate.plants import BadRow, Group, UpgradeCase
from txnpipe.tools.generate.world import (
    BIG_A,
    CATEGORIES,
    CATEGORY_INDEX,
    DEI,
    DEI_FEW_F,
    DEI_RATIO,
    MERCHANTS,
    World,
)

DEFAULTS = Settings()
COMPARE = {"<": operator.lt, "<=": operator.le, ">=": operator.ge, ">": operator.gt}


class _Values:
    """A dialect that evaluates a condition on plain numbers (``render`` with this dialect)."""

    def __init__(self, quantities: dict[str, float]) -> None:
        self.quantities = quantities

    def quantity(self, quantity: Quantity) -> float:
        return self.quantities[quantity.name]

    def setting(self, setting: Setting) -> float:
        return setting.value(DEFAULTS)

    def number(self, value: float) -> float:
        return value

    def product(self, left: float, right: float) -> float:
        return left * right

    def shifted(self, term: float, by: float) -> float:
        return term + by

    def compare(self, left: float, op: str, right: float) -> bool:
        return COMPARE[op](left, right)

    def conjunction(self, terms: list[bool]) -> bool:
        return all(terms)


class _Scaled(_Values):
    """``_Values`` at other settings than the defaults."""

    def __init__(self, quantities: dict[str, float], settings: Settings) -> None:
        super().__init__(quantities)
        self.settings = settings

    def setting(self, setting: Setting) -> float:
        return setting.value(self.settings)


def _holds(rule: ThresholdRule, **quantities: float) -> bool:
    return bool(render(rule.condition, _Values(quantities)))  # type: ignore[arg-type]


def _world(seed: int = 1) -> World:
    world = World(random.Random(seed))
    world.add_merchants()
    for _ in range(50):
        world.add_customer()
    return world


def test_thresholds_are_the_catalogues_at_the_default_settings() -> None:
    assert cases.MIN_PAIR_TXNS == DEFAULTS.child_min_txns == 80
    assert cases.MAX_MEAN_VALUE == DEFAULTS.child_max_avg_value == 20.0
    assert cases.MIN_FEMALES == DEFAULTS.dei_min_female_customers == 1000
    assert cases.MAX_FEMALE_MALE_RATIO == DEFAULTS.dei_max_female_male_ratio == 0.10
    assert cases.WEIGHT_PERCENTILE == DEFAULTS.upgrade_weight_percentile == 0.20
    # The positions ``cases`` maps by are the catalogue's declaration order.
    assert [s.name for s in CHILD.settings] == ["child_min_txns", "child_max_avg_value"]
    assert [s.name for s in DEI_NEEDED.settings] == [
        "dei_min_female_customers", "dei_max_female_male_ratio"
    ]


def _pair_cases(groups: list[Group]) -> list[tuple[int, Decimal, bool, int]]:
    """(records, mean value, holds for CHILD, merchants) of each planted customer."""
    out = []
    for group in groups:
        accepted = [r for r in group.rows if not isinstance(r, BadRow)]
        values = [Decimal(r[2]) for r in accepted]
        mean = sum(values) / len(values)
        by_merchant = Counter(r[1] for r in accepted)
        n = max(by_merchant.values())
        holds = len(by_merchant) == 1 and _holds(CHILD, n=n, mean_value=float(mean))
        out.append((len(group.rows), mean, holds, len(by_merchant)))
    return out


def test_child_cases_hit_and_miss_at_the_boundaries() -> None:
    planted = _pair_cases(cases.plan_child(_world(), 1.0))
    count = cases.MIN_PAIR_TXNS
    limit = Decimal(str(cases.MAX_MEAN_VALUE))
    cent = Decimal("0.01")
    by_shape = {(n, mean, merchants): holds for n, mean, holds, merchants in planted}
    assert by_shape[(count, limit - cent, 1)] is True  # one cent below: a hit
    assert by_shape[(count, limit, 1)] is False  # at the limit: the strict < misses
    assert by_shape[(count, limit + cent, 1)] is False
    assert by_shape[(count - 1, limit / 2, 1)] is False  # one record short
    assert by_shape[(count, limit / 2, 2)] is False  # split over two merchants
    hits = sum(holds for _, _, holds, _ in planted)
    assert hits == cases.CHILD_HITS_AT_FULL + 2  # the plain hits, 19.99 and the long one
    # The case with one rejected record: 79 accepted, a miss.
    rejected = [g for g in cases.plan_child(_world(), 1.0)
                if any(isinstance(r, BadRow) for r in g.rows)]  # fmt: skip
    assert len(rejected) == 1 and len(rejected[0].rows) == count


@pytest.mark.parametrize("frac", [1.0, 0.25, 20_000 / 594_643])
def test_dei_cases_fire_once_and_miss_by_one_female_and_at_the_ratio(frac: float) -> None:
    world = _world()
    groups = cases.plan_dei(world, frac)
    counts = {}
    for group in groups:
        (merchant,) = {r[1] for r in group.rows}
        genders = Counter(world.customers[r[0]].gender for r in group.rows)
        counts[merchant] = (genders["F"], genders["M"])
    females = max(1, round(cases.MIN_FEMALES * frac))
    scaled = Settings().replace({"dei_min_female_customers": str(females)})

    def holds(f: int, m: int) -> bool:
        values = {"females": f, "males": m}
        return bool(render(DEI_NEEDED.condition, _Scaled(values, scaled)))  # type: ignore[arg-type]

    assert counts[DEI][0] == females and holds(*counts[DEI])
    assert counts[DEI_FEW_F][0] == females - 1 and not holds(*counts[DEI_FEW_F])
    f, m = counts[DEI_RATIO]
    assert f == females and m == round(f / cases.MAX_FEMALE_MALE_RATIO)
    assert not holds(f, m) and holds(f, m + 1)


def test_upgrade_hits_sit_below_the_weight_percentile_and_near_misses_above() -> None:
    rng = random.Random(3)
    n_ordinary = 400
    transport = CATEGORY_INDEX["es_transportation"]
    base = {c * len(CATEGORIES) + transport: (rng.randint(500, 6000), False, False)
            for c in range(n_ordinary)}  # fmt: skip
    bs_keys = {c * MERCHANTS + BIG_A: 0 for c in range(n_ordinary)}
    roles = ["hit", "hit", "hit_dup", "near", "near_dup", "no_weight"]
    planted = tuple(UpgradeCase(n_ordinary + i, BIG_A, role) for i, role in enumerate(roles))
    weights = cases.weights_for_upgrades(rng, planted, bs_keys, base, n_ordinary)
    means = {c: sum(w) / len(w) for c, w in weights.items() if w}
    everyone = [w for w, _, _ in base.values()] + list(means.values())
    tw = percentile_cont(everyone, cases.WEIGHT_PERCENTILE)
    for case in planted:
        if case.role.startswith("hit"):
            assert means[case.customer] <= tw, case
        elif case.role.startswith("near"):
            assert means[case.customer] > tw, case
        else:
            assert weights[case.customer] == []
    assert min(weights[planted[2].customer]) < tw < max(weights[planted[2].customer])  # hit_dup
