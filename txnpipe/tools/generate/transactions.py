"""The transactions file: ordinary traffic in the free slots, the planted rows in theirs."""

from __future__ import annotations

import math
from pathlib import Path

from txnpipe.tools.generate.formats import BANKSIM_TRANSACTIONS_HEADER, SEED_TRANSACTIONS_HEADER
from txnpipe.tools.generate.plants import BadRow, Plan, Planted
from txnpipe.tools.generate.world import (
    BIG_A,
    BIG_B,
    BIG_SHARES,
    CATEGORIES,
    CATEGORY_TABLE,
    FIRST_SMALL,
    MERCHANTS,
    STEPS,
    ZIPCODE,
    World,
)


def write_transactions(
    path: Path,
    layout: str,
    world: World,
    rows: int,
    slots: list[Planted | None],
    plan: Plan,
    n_ordinary: int,
    activity: list[float],
) -> tuple[dict[int, int], dict[int, int]]:
    """Fill the free slots with ordinary traffic and write the file in large blocks.

    Returns the weight keys that accepted records use, in first-seen order, each with whether any of
    its records was fraud: BankSim keys are ``customer * MERCHANTS + merchant`` and seed keys
    ``customer * len(CATEGORIES) + category`` (ints are far cheaper than tuples at this volume).
    """
    rng = world.rng
    merchants = world.merchants
    customers = world.customers
    n_cat = len(CATEGORIES)
    n_ordinary_rows = rows - plan.planted_rows

    planted_at = [0, 0]
    for group in plan.groups:
        for row in group.rows:
            if isinstance(row, tuple) and row[1] in (BIG_A, BIG_B):
                planted_at[row[1]] += 1
    share = [0.0] * MERCHANTS
    if n_ordinary_rows > 0:
        for big in (BIG_A, BIG_B):
            share[big] = max(0.0, BIG_SHARES[big] * rows - planted_at[big]) / n_ordinary_rows
    rest = max(0.0, 1.0 - share[BIG_A] - share[BIG_B])
    zipf = [1.0 / (k + 1) ** 0.8 for k in range(MERCHANTS - FIRST_SMALL)]
    zsum = sum(zipf)
    for k, z in enumerate(zipf):
        share[FIRST_SMALL + k] = rest * z / zsum
    pool = [m for m in range(MERCHANTS) if share[m] > 0.0]
    cum_m: list[float] = []
    acc = 0.0
    for m in pool:
        acc += share[m]
        cum_m.append(acc)
    cum_c: list[float] = []
    acc = 0.0
    for a in activity:
        acc += a
        cum_c.append(acc)
    ord_customers = rng.choices(range(n_ordinary), cum_weights=cum_c, k=max(0, n_ordinary_rows))
    ord_merchants = rng.choices(pool, cum_weights=cum_m, k=max(0, n_ordinary_rows))

    mus = [CATEGORY_TABLE[m.category].mu for m in merchants]
    sigmas = [CATEGORY_TABLE[m.category].sigma for m in merchants]
    fraud_rates = [CATEGORY_TABLE[m.category].fraud_rate for m in merchants]
    cats = [m.category for m in merchants]
    banksim = layout == "banksim"
    if banksim:
        cust_text = [f"'{c.cid}','{c.age}','{c.gender}','{ZIPCODE}'," for c in customers]
        merch_text = [
            f"'{m.mid}','{ZIPCODE}','{CATEGORIES[m.category]}'," for m in merchants
        ]
    else:
        cust_text = [c.cid for c in customers]
        merch_text = [m.mid for m in merchants]
    genders = [c.gender for c in customers]
    cat_names = list(CATEGORIES)

    bs_keys: dict[int, int] = {}
    seed_keys: dict[int, int] = {}
    gauss = rng.gauss  # exp(mu + sigma * gauss) is a lognormal draw at half lognormvariate's cost
    exp = math.exp
    rnd = rng.random
    lines: list[str] = []
    j = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write((BANKSIM_TRANSACTIONS_HEADER if banksim else SEED_TRANSACTIONS_HEADER) + "\n")
        for i in range(rows):
            step = i * STEPS // rows
            slot = slots[i]
            if slot is None:
                c = ord_customers[j]
                m = ord_merchants[j]
                j += 1
                amount = f"{exp(mus[m] + sigmas[m] * gauss(0.0, 1.0)):.2f}"
                fraud = 1 if rnd() < fraud_rates[m] else 0
            elif isinstance(slot, BadRow):
                lines.append(bad_line(slot, layout, world, i, step))
                continue
            else:
                c, m, amount, fraud = slot
            key = c * MERCHANTS + m
            if key not in bs_keys or fraud:
                bs_keys[key] = bs_keys.get(key, 0) | fraud
            key = c * n_cat + cats[m]
            if key not in seed_keys or fraud:
                seed_keys[key] = seed_keys.get(key, 0) | fraud
            if banksim:
                lines.append(f"{step},{cust_text[c]}{merch_text[m]}{amount},{fraud}")
            else:
                lines.append(
                    f"T{i:08d},{cust_text[c]},{merch_text[m]},{amount},{genders[c]},"
                    f"{cat_names[cats[m]]},{step}"
                )
            if len(lines) >= 65_536:
                out.write("\n".join(lines))
                out.write("\n")
                lines.clear()
        if lines:
            out.write("\n".join(lines))
            out.write("\n")
    return bs_keys, seed_keys


def bad_line(bad: BadRow, layout: str, world: World, index: int, step: int) -> str:
    """Format one rejectable record; each kind breaks exactly one rule of SPEC 2.2."""
    customer = world.customers[bad.customer]
    merchant = world.merchants[bad.merchant]
    category = CATEGORIES[merchant.category]
    amount = {
        "negative_amount": "-" + bad.amount if bad.amount != "0.00" else "-1.00",
        "non_numeric_amount": "abc",
        "infinite_amount": "inf",
        "nan_amount": "NaN",
    }.get(bad.kind, bad.amount)
    if layout == "banksim":
        cid = "''" if bad.kind == "empty_customer" else f"'{customer.cid}'"
        mid = "''" if bad.kind == "empty_merchant" else f"'{merchant.mid}'"
        fields = [
            str(step), cid, f"'{customer.age}'", f"'{customer.gender}'", f"'{ZIPCODE}'", mid,
            f"'{ZIPCODE}'", f"'{category}'", amount, "0",
        ]
        if bad.kind == "missing_field":
            del fields[6]
    else:
        cid = "" if bad.kind == "empty_customer" else customer.cid
        mid = "" if bad.kind == "empty_merchant" else merchant.mid
        fields = [f"T{index:08d}", cid, mid, amount, customer.gender, category, str(step)]
        if bad.kind == "missing_field":
            del fields[4]
    if bad.kind == "extra_field":
        fields.append("0")
    return ",".join(fields)
