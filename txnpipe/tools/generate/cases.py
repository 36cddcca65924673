"""The planted cases of each pattern: hits and the near misses that catch off-by-one and
rounding mistakes, placed against the rule catalogue's thresholds at the default settings."""

from __future__ import annotations

import math
import random

from txnpipe.core.rules import CHILD, DEI_NEEDED, UPGRADE, ThresholdRule
from txnpipe.core.settings import Settings
from txnpipe.tools.generate.plants import BadRow, Group, Planted, UpgradeCase
from txnpipe.tools.generate.world import (
    BIG_A,
    BIG_B,
    BIG_SHARES,
    CATEGORIES,
    CATEGORY_INDEX,
    DEI,
    DEI_FEW_F,
    DEI_RATIO,
    FIRST_SMALL,
    MERCHANTS,
    World,
    cents,
    cents_with_total,
)

_DEFAULTS = Settings()


def _defaults(rule: ThresholdRule) -> tuple[int | float, ...]:
    """The default value of each setting ``rule``'s condition reads, in the order the catalogue
    declares them (``rule.settings``)."""
    return tuple(setting.value(_DEFAULTS) for setting in rule.settings)


# By position, as txnpipe/core/rules/catalogue.py declares the conditions: CHILD reads (the
# least number of a pair's transactions, the mean value the pair must stay below); DEI_NEEDED
# reads (the least number of female customers, the female-to-male ratio they must stay below).
MIN_PAIR_TXNS, MAX_MEAN_VALUE = _defaults(CHILD)
MIN_FEMALES, MAX_FEMALE_MALE_RATIO = _defaults(DEI_NEEDED)
_, _, WEIGHT_PERCENTILE = UPGRADE.values(_DEFAULTS)

# Enough plain CHILD hits that a default-size run yields more than one 100-row detection file.
CHILD_HITS_AT_FULL = 80


def plan_child(world: World, frac: float) -> list[Group]:
    """PatId2 hits and near misses, each customer squeezed into a quarter of the stream.

    Exact cent totals put means exactly on one cent below, at and one cent above the limit
    (19.99, 20.00 and 20.01 at the defaults), so float noise and the strict ``<`` of SPEC 4.2
    decide them; the one-short (79-record), rejected-record and split-merchant customers test
    that only accepted records of one (customer, merchant) count.
    """
    rng = world.rng
    count = int(MIN_PAIR_TXNS)  # 80 at the defaults
    limit = round(MAX_MEAN_VALUE * 100)  # in cents: 2000 at the defaults
    low = limit // 2  # a mean clearly below the limit: 10.00
    small = list(range(FIRST_SMALL + 3, FIRST_SMALL + 25))
    cases: list[tuple[str, int, int]] = []  # (kind, count, total cents)
    for _ in range(max(1, round(CHILD_HITS_AT_FULL * frac))):
        cases.append(("plain", count, count * rng.randint(low, limit * 17 // 20)))
    cases.append(("plain", count, count * (limit - 1)))
    if frac >= 0.5:
        many = count * 15 // 8  # well past the minimum: 150 records with a mean of 9.00
        cases.append(("plain", many, many * (limit * 9 // 20)))
    cases.append(("plain", count - 1, (count - 1) * low))
    cases.append(("plain", count, count * limit))
    cases.append(("plain", count, count * (limit + 1)))
    cases.append(("one_rejected", count, count * low))
    cases.append(("split", count, count * low))
    groups: list[Group] = []
    for kind, n, total in cases:
        customer = world.add_customer()
        merchant = rng.choice(small)
        amounts = cents_with_total(rng, n, total)
        planted: list[Planted] = []
        if kind == "split":
            other = rng.choice([m for m in small if m != merchant])
            for i, value in enumerate(amounts):
                planted.append((customer, merchant if i % 2 == 0 else other, cents(value), 0))
        else:
            for value in amounts:
                planted.append((customer, merchant, cents(value), 0))
        if kind == "one_rejected":
            victim = rng.randrange(n)
            planted[victim] = BadRow("negative_amount", customer, merchant, cents(amounts[victim]))
        start = rng.uniform(0.0, 0.75)
        groups.append(Group(tuple(planted), start, start + 0.25))
    return groups


def plan_dei(world: World, frac: float) -> list[Group]:
    """PatId3: one merchant that fires and two that miss by one female / by the ratio boundary.

    The three merchants are served only by these planted customers, so F and M are exact.  The
    firing merchant's records sit in the first 70% of the stream so its detection lands before the
    end; E and U customers are there to check that only F and M are counted.
    """
    females = max(1, round(MIN_FEMALES * frac))
    # The male count at which the females are exactly the ratio (10 per female at the defaults).
    at_ratio = round(females / MAX_FEMALE_MALE_RATIO)
    males = at_ratio + max(1, females // 2)
    f_ids = [world.add_customer("F") for _ in range(females)]
    m_ids = [world.add_customer("M") for _ in range(males)]
    other_ids = [world.add_customer("E") for _ in range(round(40 * frac))]
    other_ids += [world.add_customer("U") for _ in range(round(20 * frac))]

    def visit(customers: list[int], merchant: int) -> list[Planted]:
        return [(c, merchant, world.amount(merchant), world.fraud(merchant)) for c in customers]

    fires = visit(f_ids + m_ids + other_ids, DEI)
    one_female_short = visit(f_ids[: females - 1] + m_ids + other_ids, DEI_FEW_F)
    ratio_boundary = visit(f_ids + m_ids[:at_ratio], DEI_RATIO)
    return [
        Group(tuple(fires), 0.0, 0.7),
        Group(tuple(one_female_short), 0.0, 1.0),
        Group(tuple(ratio_boundary), 0.0, 1.0),
    ]


def plan_upgrade(
    world: World, rows: int, frac: float, activity: list[float]
) -> tuple[list[Group], list[UpgradeCase]]:
    """PatId1: customers far above the busiest ordinary customer at each big merchant.

    Their records are spread over the whole stream so they stay in the top 1% at every evaluation
    point; whether they are hits or near misses is decided by the weights chosen later
    (``weights_for_upgrades``).
    """
    rng = world.rng
    total_activity = sum(activity)
    top_activity = max(activity)
    roles = (
        ["hit_dup"] + ["hit"] * max(0, round(5 * frac) - 1)
        + ["near_dup"] * (1 if frac >= 0.5 else 0) + ["near"] * round(2 * frac)
        + ["no_weight"] * round(1 * frac)
    )
    groups: list[Group] = []
    cases: list[UpgradeCase] = []
    for merchant, share in ((BIG_A, BIG_SHARES[0]), (BIG_B, BIG_SHARES[1])):
        busiest = share * rows * top_activity / total_activity
        for role in roles:
            customer = world.add_customer()
            count = max(1, round(busiest * rng.uniform(1.25, 1.6)))
            planted = tuple(
                (customer, merchant, world.amount(merchant), 0) for _ in range(count)
            )
            groups.append(Group(planted, 0.0, 1.0))
            cases.append(UpgradeCase(customer, merchant, role))
    return groups, cases


def weights_for_upgrades(
    rng: random.Random,
    upgrades: tuple[UpgradeCase, ...],
    bs_keys: dict[int, int],
    base: dict[int, tuple[int, bool, bool]],
    n_ordinary: int,
) -> dict[int, list[int]]:
    """Weight rows (cents) for the planted PatId1 customers, placed against the final Tw estimate.

    ``base`` is the (weight, absent, duplicated) of each seed key. Hits sit well below the weight
    percentile (the 20th at the defaults); near misses sit a few dozen ranks above it, far enough
    that the small drift of Tw between evaluation points does not reach them.  The ``_dup``
    variants have rows on both sides of Tw, so only the mean (SPEC 2.2) classifies them correctly.
    """
    n_cat = len(CATEGORIES)
    transport = CATEGORY_INDEX["es_transportation"]
    overrides: dict[int, list[int]] = {}
    for merchant in (BIG_A, BIG_B):
        cases = [case for case in upgrades if case.merchant == merchant]
        if not cases:
            continue
        present: list[int] = []
        for key in bs_keys:
            c, m = divmod(key, MERCHANTS)
            if m == merchant and c < n_ordinary:
                weight, absent, _ = base[c * n_cat + transport]
                if not absent:
                    present.append(weight)
        present.sort()
        if not present:
            present = [3000]
        hits = sum(1 for case in cases if case.role.startswith("hit"))
        nears = sum(1 for case in cases if case.role.startswith("near"))
        rank = WEIGHT_PERCENTILE * (len(present) + hits + nears - 1)
        at = min(len(present) - 1, max(0, math.ceil(rank) - hits))
        tw = present[at]
        gap = max(1, round(0.006 * len(present)))
        near_index = 0
        for case in cases:
            if case.role == "hit":
                overrides[case.customer] = [max(1, round(tw * rng.uniform(0.15, 0.6)))]
            elif case.role == "hit_dup":
                weight = max(1, round(tw * 0.85))
                high = round(tw * 1.4)
                overrides[case.customer] = [high, max(1, 2 * weight - high)]
            elif case.role in ("near", "near_dup"):
                k = min(len(present) - 2, at + gap + near_index) if len(present) > 1 else 0
                near_index += 1
                weight = (present[k] + present[min(k + 1, len(present) - 1)]) // 2
                weight = max(weight, present[min(at + 1, len(present) - 1)] + 1)
                if case.role == "near":
                    overrides[case.customer] = [weight]
                else:
                    low = max(1, weight // 2)
                    overrides[case.customer] = [low, 3 * weight - 2 * low, low]
            else:
                overrides[case.customer] = []
    return overrides
