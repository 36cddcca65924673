"""Catch-up: a backlog of landed chunks applied in one transaction, every point still exact.

After an outage, or behind a ``--fast`` chunker, chunks wait in line. Applying them one
transaction each upserts a pair once per chunk that touches it; a batch upserts it once
(``aggregate.sql`` over the batch's rows), and a pair is touched again and again within a few
chunks (16,000 distinct pairs in 50,000 generated records). Every chunk of the batch is still
an evaluation point, evaluated before the upsert from the stored state and the batch's
per-chunk deltas:

- a threshold rule's first point is found by window sums (``catch_up_states.sql``, one branch
  per rule of the catalogue, rendered by the SQL dialect the per-chunk apply uses);
- PatId1 by the merchant walk (``core.rules.percentile_walk``) of each merchant past the
  minimum, resumed from its stored pairs, its emitted customers and its last thresholds,
  then walked through the batch's chunks in order; the thresholds of its last point are kept
  so that the next per-chunk evaluation reads only what may newly hold.

Detections are numbered in (chunk, pattern, merchant, customer) order, as the per-chunk apply
numbers them, so the detection files are the same whichever way the chunks were applied. (A
detector whose PatId1 is on a batch engine does not batch: ``Detector._batch_limit``.)
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from itertools import groupby

import psycopg

from txnpipe.core.ports import BatchChunk
from txnpipe.core.rules import Catalogue, PercentileRule
from txnpipe.core.rules.percentile_walk import MerchantWalk, walk_chunks
from txnpipe.core.settings import Settings
from txnpipe.postgres.aggregate import aggregate_parameters, rule_branches
from txnpipe.postgres.ingest import write_history
from txnpipe.postgres.statements import statement

FirstPoint = tuple[int, int, str, str]  # (chunk, pattern, merchant, customer)


@cache
def threshold_sql(catalogue: Catalogue) -> str | None:
    """Every threshold rule's first points in a batch, one branch each."""
    branches = rule_branches(catalogue, "catch_up_pair_rule", "catch_up_merchant_rule")
    return statement("catch_up_states") + "UNION ALL\n".join(branches) if branches else None


@cache
def _upsert_sql() -> str:
    """``aggregate.sql``'s upserts alone: the rules were evaluated before them."""
    return statement("aggregate") + statement("aggregate_upserts_only")


def apply_batch(conn: psycopg.Connection, sid: int, base: int, by_merchant: bool,
                staged: set[int], chunks: Sequence[BatchChunk], y_start: datetime,
                settings: Settings, rules: Catalogue) -> int:  # fmt: skip
    """Apply consecutive ``chunks`` in the caller's transaction (the source's lock held);
    ``base`` is the number of detections recorded so far. Returns how many were recorded."""
    first, last = chunks[0].chunk, chunks[-1].chunk
    if [c.chunk for c in chunks] != list(range(first, last + 1)):
        raise ValueError(f"a batch is consecutive chunks, not {[c.chunk for c in chunks]}")
    for c in chunks:
        if c.chunk in staged:
            staged.discard(c.chunk)
        else:
            write_history(conn, sid, c.chunk, c.transactions, by_merchant)
    rows = settings.chunk_rows
    params = {"sid": sid, "chunk": first, "lo": first * rows, "hi": (last + 1) * rows,
              **aggregate_parameters(rules, settings)}  # fmt: skip
    found: list[FirstPoint] = []
    if (sql := threshold_sql(rules)) is not None:
        found += [tuple(r) for r in conn.execute(sql, params).fetchall()]  # type: ignore[misc]
    upgrade = rules.percentile_rule
    kept: dict[str, tuple[int, float]] = {}
    if upgrade is not None:
        points, kept = _walk(conn, params, upgrade, settings)
        found += points
    conn.execute(_upsert_sql(), {**params, "inline": False})  # the cursors are read afresh
    if kept:
        conn.execute(statement("catch_up_thresholds_kept"), {
            "sid": sid, "merchants": list(kept), "min_n": [k[0] for k in kept.values()],
            "tw": [k[1] for k in kept.values()]})  # fmt: skip
    row = conn.execute(statement("record_batch"), {
        "sid": sid, "base": base, "first": first, "last": last, "y_start": y_start,
        "chunk": [f[0] for f in found], "pattern": [f[1] for f in found],
        "merchant": [f[2] for f in found], "customer": [f[3] for f in found],
        "chunks": [c.chunk for c in chunks], "records": [c.records for c in chunks],
        "rejects": [c.rejects for c in chunks], "applied_with": len(chunks),
    }).fetchone()  # fmt: skip
    return int(row[0]) if row else 0


def _walk(conn: psycopg.Connection, params: dict[str, object], rule: PercentileRule,
          settings: Settings) -> tuple[list[FirstPoint], dict[str, tuple[int, float]]]:  # fmt: skip
    """PatId1's first points in the batch, and each walked merchant's last thresholds."""
    minimum, count_p, weight_p = rule.values(settings)
    merchants = conn.execute(statement("catch_up_upgrade_merchants"), params).fetchall()
    if not merchants:
        return [], {}
    names = {"sid": params["sid"], "merchants": [m[0] for m in merchants]}
    pairs: dict[str, list[tuple[str, int, int, float]]] = defaultdict(list)
    for merchant, *pair in conn.execute(statement("catch_up_upgrade_pairs"), names):
        pairs[merchant].append(tuple(pair))  # type: ignore[arg-type]
    detected: dict[str, list[str]] = defaultdict(list)
    query = statement("catch_up_upgrade_detected")
    for merchant, customer in conn.execute(query, {**names, "pattern": rule.pattern}):
        detected[merchant].append(customer)
    walks: dict[str, MerchantWalk] = {}
    for merchant, n, last_min_n, last_tw in merchants:
        walk = walks[merchant] = MerchantWalk(minimum, count_p, weight_p)
        last = None if last_min_n is None or last_tw is None else (last_min_n, last_tw)
        walk.resume(n, pairs.pop(merchant, ()), detected.pop(merchant, ()), last)
    deltas = conn.execute(statement("catch_up_upgrade_deltas"), {**params, **names})
    points: list[FirstPoint] = []
    for merchant, rows in groupby(deltas, key=lambda r: r[0]):
        points += [(chunk, rule.pattern, merchant, customer)
                   for chunk, customer in walk_chunks(walks[merchant], (r[1:] for r in rows))]  # fmt: skip
    kept = {m: (w.last[0], w.last[1]) for m, w in walks.items()
            if w.last is not None and w.last[1] is not None}  # fmt: skip
    return points, kept
