"""The importance file: a weight per key, with the duplicates, gaps and rows to skip that
SPEC 2.2 describes, and the planted PatId1 weights."""

from __future__ import annotations

import math
from pathlib import Path

from txnpipe.tools.generate.cases import weights_for_upgrades
from txnpipe.tools.generate.formats import BANKSIM_IMPORTANCE_HEADER, SEED_IMPORTANCE_HEADER
from txnpipe.tools.generate.plants import Plan
from txnpipe.tools.generate.world import (
    BIG_A,
    BIG_B,
    CATEGORIES,
    CATEGORY_INDEX,
    MERCHANTS,
    World,
    cents,
)


def write_importance(
    path: Path,
    layout: str,
    world: World,
    n_ordinary: int,
    plan: Plan,
    bs_keys: dict[int, int],
    seed_keys: dict[int, int],
    rows: int,
) -> None:
    """Weights per key, with ~5% duplicated keys (whose rows average to the weight), ~3% keys absent,
    planted PatId1 weights set relative to each big merchant's Tw, and a few rows to be skipped."""
    rng = world.rng
    n_cat = len(CATEGORIES)
    transport = CATEGORY_INDEX["es_transportation"]
    # Base weight per (customer, category): the seed key itself, and the BankSim weight at the big
    # merchants, so PatId1 sees the same w(c, m) in both layouts.
    base: dict[int, tuple[int, bool, bool]] = {}
    mu = math.log(30.0) - 0.7 * 0.7 / 2.0
    for key in seed_keys:
        weight = max(1, round(rng.lognormvariate(mu, 0.7) * 100))
        base[key] = (weight, rng.random() < 0.03, rng.random() < 0.05)

    overrides = weights_for_upgrades(rng, plan.upgrades, bs_keys, base, n_ordinary)

    entries: list[tuple[float, str]] = []
    n_keys = len(bs_keys) if layout == "banksim" else len(seed_keys)

    def emit(index: int, weights: list[int], render: str) -> None:
        entries.append((float(index), render.format(w=cents(weights[0]))))
        later = sorted(rng.uniform(index, n_keys) for _ in weights[1:])
        for position, weight in zip(later, weights[1:]):
            entries.append((position, render.format(w=cents(weight))))

    def split(weight: int, duplicated: bool) -> list[int]:
        if not duplicated or weight < 2:
            return [weight]
        d = rng.randint(1, weight - 1)
        return [weight - d, weight + d]

    customers = world.customers
    merchants = world.merchants
    if layout == "banksim":
        for index, (key, fraud) in enumerate(bs_keys.items()):
            c, m = divmod(key, MERCHANTS)
            cat = merchants[m].category
            render = (
                f"'{customers[c].cid}','{merchants[m].mid}',{{w}},'{CATEGORIES[cat]}',{fraud}"
            )
            if c in overrides:
                weights = overrides[c]
            elif m in (BIG_A, BIG_B):
                weight, absent, duplicated = base[c * n_cat + cat]
                weights = [] if absent else split(weight, duplicated)
            else:
                jitter = rng.uniform(0.7, 1.4)
                absent = rng.random() < 0.03
                duplicated = rng.random() < 0.05
                weight = max(1, round(base[c * n_cat + cat][0] * jitter))
                weights = [] if absent else split(weight, duplicated)
            if weights:
                emit(index, weights, render)
    else:
        for index, (key, fraud) in enumerate(seed_keys.items()):
            c, cat = divmod(key, n_cat)
            render = f"{customers[c].cid},{CATEGORIES[cat]},{{w}},{fraud}"
            if c in overrides and cat == transport:
                weights = overrides[c]
            else:
                weight, absent, duplicated = base[key]
                weights = [] if absent else split(weight, duplicated)
            if weights:
                emit(index, weights, render)

    entries.extend(_rows_to_skip(layout, world, n_ordinary, bs_keys, seed_keys, rows, n_keys))
    entries.sort(key=lambda e: e[0])
    header = BANKSIM_IMPORTANCE_HEADER if layout == "banksim" else SEED_IMPORTANCE_HEADER
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(header + "\n")
        block: list[str] = []
        for _, line in entries:
            block.append(line)
            if len(block) >= 65_536:
                out.write("\n".join(block) + "\n")
                block.clear()
        if block:
            out.write("\n".join(block) + "\n")


def _rows_to_skip(
    layout: str,
    world: World,
    n_ordinary: int,
    bs_keys: dict[int, int],
    seed_keys: dict[int, int],
    rows: int,
    n_keys: int,
) -> list[tuple[float, str]]:
    """Rows SPEC 2.2 says to skip: they reuse real keys, so a reader that keeps them corrupts a
    mean."""
    rng = world.rng
    customers = world.customers
    merchants = world.merchants
    entries: list[tuple[float, str]] = []
    keys = bs_keys if layout == "banksim" else seed_keys
    divisor = MERCHANTS if layout == "banksim" else len(CATEGORIES)
    ordinary_keys = [k for k in keys if k // divisor < n_ordinary]
    if rows >= 100 and ordinary_keys:
        for kind in ("empty_customer", "nan_weight", "infinite_weight", "missing_field"):
            c, rest = divmod(ordinary_keys[rng.randrange(len(ordinary_keys))], divisor)
            if layout == "banksim":
                q = "'"
                mid = merchants[rest].mid
                cat = CATEGORIES[merchants[rest].category]
                fields = [f"'{customers[c].cid}'", f"'{mid}'", "12.50", f"'{cat}'", "0"]
            else:
                q = ""
                fields = [customers[c].cid, CATEGORIES[rest], "12.50", "0"]
            if kind == "empty_customer":
                fields[0] = q + q
            elif kind == "nan_weight":
                fields[2] = "nan"
            elif kind == "infinite_weight":
                fields[2] = "inf"
            else:
                del fields[1]
            text = ",".join(fields)
            entries.append((rng.uniform(0, n_keys), text))
    return entries
