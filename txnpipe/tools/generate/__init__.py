"""Synthetic BankSim-shaped input files with planted pattern cases (``txnpipe generate``).

The real BankSim files are large, licensed separately and do not reliably contain every pattern of
SPEC 4.2 together with the near misses that catch off-by-one and rounding mistakes.  This generator
produces files with the same layouts (SPEC 2.1) and a similar shape, plus deliberately planted
customers and merchants so that, at the default size and the default settings of SPEC 6, every pattern
fires and several near misses do not.  Everything comes from one ``random.Random(seed)``, so a
(rows, seed, layout) triple always gives byte-identical files, which lets tests pin expectations.

Planted structures scale with ``rows`` (relative to the BankSim size of 594,643 records): the number
of ordinary customers and the DEI customer counts shrink proportionally, while per-customer behaviour
(about 145 transactions per ordinary customer, the CHILD cases at and one below its minimum count)
stays the same.  Small files therefore keep the structures, but PatId3 (and PatId1, whose merchant
threshold is an absolute count) only fire when their count settings are scaled down in the same
proportion.  The planted cases take their thresholds from the rule catalogue at the default
settings (``cases``).

Modules, in the order a run uses them: ``world`` (customers, merchants, categories), ``plants``
(the planted row types), ``cases`` (each pattern's hits and near misses), ``plan`` (the budget and
the placement in the stream), ``transactions`` and ``importance`` (the two files, ``formats``
naming them).
"""

from __future__ import annotations

import random
from pathlib import Path

from txnpipe.tools.generate.formats import (
    BANKSIM_IMPORTANCE_HEADER,
    BANKSIM_IMPORTANCE_NAME,
    BANKSIM_TRANSACTIONS_HEADER,
    BANKSIM_TRANSACTIONS_NAME,
    LAYOUTS,
    SEED_IMPORTANCE_HEADER,
    SEED_IMPORTANCE_NAME,
    SEED_TRANSACTIONS_HEADER,
    SEED_TRANSACTIONS_NAME,
    GeneratedFiles,
    paths,
)
from txnpipe.tools.generate.importance import write_importance
from txnpipe.tools.generate.plan import make_plan, place
from txnpipe.tools.generate.transactions import write_transactions
from txnpipe.tools.generate.world import (
    CATEGORIES,
    FULL_ROWS,
    MIN_ORDINARY_CUSTOMERS,
    ORDINARY_CUSTOMERS_AT_FULL,
    World,
)

__all__ = [
    "BANKSIM_IMPORTANCE_HEADER",
    "BANKSIM_IMPORTANCE_NAME",
    "BANKSIM_TRANSACTIONS_HEADER",
    "BANKSIM_TRANSACTIONS_NAME",
    "CATEGORIES",
    "FULL_ROWS",
    "LAYOUTS",
    "SEED_IMPORTANCE_HEADER",
    "SEED_IMPORTANCE_NAME",
    "SEED_TRANSACTIONS_HEADER",
    "SEED_TRANSACTIONS_NAME",
    "GeneratedFiles",
    "generate",
]


def generate(
    out_dir: Path, rows: int = FULL_ROWS, seed: int = 7, layout: str = "banksim"
) -> GeneratedFiles:
    """Write a transactions file and its importance file into ``out_dir``.

    ``layout`` picks the file names and columns (SPEC 2.1); the underlying stream is the same for
    both layouts, so a seed gives comparable data whichever layout a test needs.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows must be a non-negative integer, got {rows!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tx_path, imp_path = paths(out_dir, layout)

    rng = random.Random(seed)
    world = World(rng)
    scale = rows / FULL_ROWS
    frac = min(1.0, scale)
    world.add_merchants()
    n_ordinary = max(MIN_ORDINARY_CUSTOMERS, round(ORDINARY_CUSTOMERS_AT_FULL * scale))
    activity = [rng.gammavariate(2.0, 1.0) for _ in range(n_ordinary)]
    for _ in range(n_ordinary):
        world.add_customer()
    plan = make_plan(world, rows, frac, activity)
    slots = place(rng, rows, plan.groups)
    bs_keys, seed_keys = write_transactions(
        tx_path, layout, world, rows, slots, plan, n_ordinary, activity
    )
    write_importance(imp_path, layout, world, n_ordinary, plan, bs_keys, seed_keys, rows)
    return GeneratedFiles(transactions=tx_path, importance=imp_path, records=rows)
