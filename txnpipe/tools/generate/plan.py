"""The plan of planted records: records to reject and every pattern's cases, kept within a
budget, then scattered over their stretches of the stream."""

from __future__ import annotations

import random

from txnpipe.tools.generate.cases import plan_child, plan_dei, plan_upgrade
from txnpipe.tools.generate.plants import BAD_KINDS, BadRow, Group, Plan, Planted, UpgradeCase
from txnpipe.tools.generate.world import FIRST_SMALL, MERCHANTS, World

# Planted records may take at most this share of the file; on tiny files whole blocks are dropped
# (lowest priority first) rather than letting plants crowd out the ordinary traffic.
PLANT_BUDGET = 0.45
BAD_EVERY = 20_000


def make_plan(world: World, rows: int, frac: float, activity: list[float]) -> Plan:
    """Build every planted structure, then keep the blocks that fit the budget, in priority order."""
    rng = world.rng
    blocks: list[tuple[list[Group], list[UpgradeCase]]] = []

    # Bad records: about one per 20,000, but every kind at least once when the file allows it.
    n_bad = max(min(len(BAD_KINDS), rows // 100), round(rows / BAD_EVERY))
    bad_rows: list[Planted] = []
    n_ordinary = len(activity)
    for i in range(n_bad):
        customer = rng.randrange(n_ordinary)
        merchant = rng.randrange(FIRST_SMALL, MERCHANTS)
        bad_rows.append(
            BadRow(BAD_KINDS[i % len(BAD_KINDS)], customer, merchant, world.amount(merchant))
        )
    blocks.append(([Group(tuple(bad_rows), 0.0, 1.0)], []))

    blocks.append((plan_child(world, frac), []))
    blocks.append((plan_dei(world, frac), []))
    blocks.append(plan_upgrade(world, rows, frac, activity))

    limit = PLANT_BUDGET * rows
    kept_groups: list[Group] = []
    kept_cases: list[UpgradeCase] = []
    used = 0
    for groups, cases in blocks:
        size = sum(len(g.rows) for g in groups)
        if size and used + size <= limit:
            kept_groups.extend(groups)
            kept_cases.extend(cases)
            used += size
    return Plan(tuple(kept_groups), tuple(kept_cases), used)


def place(rng: random.Random, rows: int, groups: tuple[Group, ...]) -> list[Planted | None]:
    """Scatter planted rows over random free slots within each group's stretch of the stream."""
    slots: list[Planted | None] = [None] * rows
    for group in groups:
        lo = min(rows - 1, int(group.lo * rows))
        hi = max(lo + 1, min(rows, int(group.hi * rows)))
        width = hi - lo
        for row in group.rows:
            for _ in range(64):
                pos = lo + rng.randrange(width)
                if slots[pos] is None:
                    break
            else:
                # The stretch is (nearly) full: take the next free slot anywhere, wrapping around.
                pos = lo + rng.randrange(width)
                while slots[pos] is not None:
                    pos = (pos + 1) % rows
            slots[pos] = row
    return slots
