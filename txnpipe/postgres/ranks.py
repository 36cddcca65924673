"""PatId1 on PostgreSQL, per chunk: each touched merchant's two percentiles read as ranks.

The count percentile (near the top) is read through ``pairs_by_top_key``, the weight
percentile (from the bottom) through ``pairs_by_mean_weight``, each from its cursor when
there is one, every read of a chunk in one round trip (``read_ranks.sql``). The percentile
arithmetic is ``core.rules.percentiles``; the cursor and floor arithmetic ``cursors``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import psycopg

from txnpipe.core.rules import PercentileRule
from txnpipe.core.rules.percentiles import (
    at_most,
    interpolate,
    least_count_at_least,
    percentile_ranks,
)
from txnpipe.core.settings import Settings
from txnpipe.postgres.cursors import Cursor, floor_too_low, new_floor, pages
from txnpipe.postgres.statements import statement

Wanted = dict[tuple[str, str], tuple[int, int, Cursor | None]]  # (index, merchant) -> ranks
Keys = dict[tuple[str, str], list[tuple[float, str]]]


class Touched(NamedTuple):
    """A PatId1 row of the aggregate: a touched merchant past the minimum, its cursors moved
    by this chunk, its last thresholds, and its touched pairs at or above the floor."""

    pattern: int
    merchant: str
    customer: None
    customers: int
    weighted_customers: int
    count_floor: int | None
    count_key: int | None
    count_customer: str | None
    count_above: int | None
    weight_key: float | None
    weight_customer: str | None
    weight_below: int | None
    last_min_count: int | None
    last_weight_threshold: float | None
    touched: list[str] | None
    counts: list[int] | None
    weights: list[float] | None


@dataclass(frozen=True)
class Evaluation:
    """A merchant's PatId1 evaluation: its thresholds (``min_count``, the least integer
    count at or above the count percentile, and the weight threshold), what is kept for the
    next one, and the touched pairs that meet them. No last thresholds: every pair at the
    thresholds must be read."""

    merchant: str
    min_count: int
    weight_threshold: float
    floor: int
    count_cursor: Cursor
    weight_cursor: Cursor
    last_min_count: int | None
    last_weight_threshold: float | None
    touched: list[str]


def evaluate(conn: psycopg.Connection, sid: int, rows: list[Touched], rule: PercentileRule,
             settings: Settings) -> list[Evaluation]:  # fmt: skip
    """PatId1's thresholds for the merchants the chunk touched, and which of the touched
    pairs at or above the count floor meet them."""
    _, count_p, weight_p = rule.values(settings)
    wanted: Wanted = {}
    for m in rows:
        lo, hi, _ = percentile_ranks(count_p, m.customers)
        if m.count_floor is not None:
            cursor = Cursor.of(m.count_key, m.count_customer, m.count_above)
            wanted["count", m.merchant] = (m.customers - 1 - hi, m.customers - 1 - lo, cursor)
        lo, hi, _ = percentile_ranks(weight_p, m.weighted_customers)
        cursor = Cursor.of(m.weight_key, m.weight_customer, m.weight_below)
        wanted["weight", m.merchant] = (lo, hi, cursor)
    keys = _read_ranks(conn, sid, wanted)
    # a cursor out of step with the rows (it ran off the end): read afresh
    again: Wanted = {k: (first, last, None) for k, (first, last, cursor) in wanted.items()
                     if k not in keys and cursor is not None}  # fmt: skip
    keys |= _read_ranks(conn, sid, again)
    return [_thresholds(conn, sid, row, count_p, weight_p, keys) for row in rows]


def _thresholds(conn: psycopg.Connection, sid: int, m: Touched, count_p: float,
                weight_p: float, keys: Keys) -> Evaluation:  # fmt: skip
    """One merchant's evaluation from its keys at the two ranks.

    Only pairs at or above the count floor are indexed by count. When the ranks fall below
    it (or there is none yet), every pair is read once and the floor rebuilt. The count
    cursor's key is at or above the threshold, so at or above the floor.
    """
    merchant, floor = m.merchant, m.count_floor
    last_min_count, last_tw = m.last_min_count, m.last_weight_threshold
    lo, hi, fraction = percentile_ranks(count_p, m.customers)
    first = m.customers - 1 - hi
    top = keys.get(("count", merchant))
    rebuilt = top is None
    if top is None:
        params = {"sid": sid, "merchant": merchant, "skip": first, "take": hi - lo + 1}
        top = [(n, str(c)) for n, c in conn.execute(statement("all_counts_at"), params)]
    (high, top_customer), (low, _) = top[0], top[-1]
    threshold = interpolate(float(low), float(high), fraction)
    if rebuilt or floor is None or floor_too_low(floor, threshold):
        floor = new_floor(threshold)
        query = "set_count_floor" if rebuilt else "raise_count_floor"
        conn.execute(statement(query), {"sid": sid, "merchant": merchant, "floor": floor})
    if rebuilt:  # touched pairs under the old floor were not returned: read them all
        last_min_count = last_tw = None
    lo, hi, fraction = percentile_ranks(weight_p, m.weighted_customers)
    bottom = keys["weight", merchant]
    (w_low, w_customer), (w_high, _) = bottom[0], bottom[-1]
    tw = interpolate(w_low, w_high, fraction)
    min_count = least_count_at_least(threshold)
    held = [c for c, n, w in zip(m.touched or (), m.counts or (), m.weights or ())
            if n >= min_count and at_most(w, tw)]  # fmt: skip
    return Evaluation(merchant, min_count, tw, floor, Cursor(int(high), top_customer, first),
                      Cursor(w_low, w_customer, lo), last_min_count, last_tw, held)  # fmt: skip


def _read_ranks(conn: psycopg.Connection, sid: int, wanted: Wanted) -> Keys:
    """The keys at ranks first..last of each (index, merchant) wanted, in rank order; those
    that came back short (a cursor out of step with the rows) are left out."""
    reads = [(kind, merchant, *page)
             for (kind, merchant), (first, last, cursor) in wanted.items()
             for page in pages(first, last, cursor)]  # fmt: skip
    if not reads:
        return {}
    columns = ("kind", "merchant", "start", "key", "customer", "skip", "take")
    params = {name: [r[i] for r in reads] for i, name in enumerate(columns)}
    rows = conn.execute(statement("read_ranks"), {"sid": sid, **params}).fetchall()
    found: Keys = {k: [] for k in wanted}
    for i, key, customer in rows:
        found[reads[i - 1][0], reads[i - 1][1]].append((key, customer))
    return {
        k: sorted(found[k], reverse=k[0] == "count")
        for k, (first, last, _) in wanted.items()
        if len(found[k]) == last - first + 1
    }
