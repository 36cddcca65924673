"""The rules of a catalogue with DuckDB SQL over the Arrow transactions (``sql/*.sql``).

Stats at evaluation point k are cumulative over chunks 0..k. Instead of recomputing them at
every point (quadratic), each (merchant, customer) pair gets one running state per chunk that
touched it, and each merchant too. A threshold rule's first point is the first state of a
pair (or merchant) that meets its condition, rendered from the catalogue: window functions,
one pass. PatId1 is a per-merchant question: DuckDB stages the per-chunk pair deltas once
and hands each merchant's, in chunk order, to the merchant walk (``core.rules.percentile_walk``;
in worker processes for large inputs), which keeps the two percentiles incrementally and
yields first points only. No pair state is expanded over points, so time is
O(records · log customers) and a walk holds one merchant's pairs.

DuckDB runs under a memory limit (``MEMORY_LIMIT``) and spills beyond it to a temporary
folder removed with the connection. Comparisons with non-integer quantities allow ε
(SPEC 4.2). DuckDB's default collation is binary, but the final order is applied in
``core.detections`` anyway.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from functools import cache
from importlib import resources
from multiprocessing import get_context
from typing import Any

import duckdb
import pyarrow as pa

from txnpipe.batch import SettingsLike, as_settings
from txnpipe.core.detections import Candidate, Detection, ordered
from txnpipe.core.rules import CATALOGUE, Catalogue
from txnpipe.core.rules.aggregates import MERCHANT_SQL, PAIR_SQL
from txnpipe.core.rules.expressions import SqlDialect, render, sql_parameters
from txnpipe.core.rules.percentile_walk import merchant_first_points

MEMORY_LIMIT = "1GB"  # DuckDB's working memory; beyond it, it spills to disk
PARALLEL_DELTAS = 500_000  # from this many deltas on, merchants are walked in processes
_ALL = 2**31 - 1  # the last chunk of a whole stream

_PAIRS = SqlDialect(PAIR_SQL, placeholder="${name}", eps="$eps")
_MERCHANTS = SqlDialect(MERCHANT_SQL, placeholder="${name}", eps="$eps")


@cache
def _sql(name: str) -> str:
    return resources.files("txnpipe.batch").joinpath("sql", f"{name}.sql").read_text()


@cache
def threshold_sql(catalogue: Catalogue) -> str | None:
    """Every threshold rule's first points, one branch each, over the shared states."""
    branches = [
        _sql(template).replace("__PATTERN__", str(rule.pattern))
        .replace("__CONDITION__", render(rule.condition, dialect))
        for rules, template, dialect in ((catalogue.pair_rules, "pair_rule", _PAIRS),
                                         (catalogue.merchant_rules, "merchant_rule", _MERCHANTS))
        for rule in rules
    ]  # fmt: skip
    if not branches:
        return None
    return f"WITH {_sql('states')},\n{_sql('merchant_states')}\n" + "UNION ALL\n".join(branches)


def _params(sql: str, values: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the statement uses: DuckDB refuses extra ones."""
    used = set(re.findall(r"\$(\w+)", re.sub(r"--[^\n]*", "", sql)))
    return {name: value for name, value in values.items() if name in used}


@contextmanager
def _connection(transactions: pa.Table, memory_limit: str,
                weights: pa.Table | None = None) -> Iterator[duckdb.DuckDBPyConnection]:  # fmt: skip
    """An in-memory database over the transactions (as ``tx``) spilling to a folder of its
    own: ``transactions`` as they are (``frames.SCHEMA``), or with ``weights``
    (``frames.weights_table``) records with their weights' keys (``frames.KEYED_SCHEMA``)
    joined with them here, under the memory limit."""
    with tempfile.TemporaryDirectory(prefix="txnpipe-duckdb-") as spill:
        config = {"memory_limit": memory_limit, "temp_directory": spill}
        with duckdb.connect(config=config) as con:
            if weights is None:
                con.register("tx", transactions)
            else:
                con.register("keyed", transactions)
                con.register("weights", weights)
                con.execute(_sql("weighed"))
                con.unregister("keyed")
                con.unregister("weights")
            yield con


def _stage_deltas(con: duckdb.DuckDBPyConnection, values: dict[str, Any]) -> list[tuple[str, int]]:
    """Creates ``upgrade_deltas``; its merchants and their delta counts, largest first."""
    sql = _sql("upgrade_deltas").replace("__STATES__", _sql("states"))
    con.execute(sql, _params(sql, values))
    return con.sql(_sql("upgrade_merchants")).fetchall()


def _merchant_deltas(con: duckdb.DuckDBPyConnection,
                     merchants: list[tuple[str, int]]) -> Iterator[tuple[str, pa.Table]]:  # fmt: skip
    """Each merchant's deltas in chunk order, one merchant's table at a time."""
    for merchant, _ in merchants:
        sql = _sql("upgrade_merchant_deltas")
        yield merchant, con.sql(sql, params={"merchant": merchant}).to_arrow_table()


def _walk(merchant: str, deltas: pa.Table, minimum: int, count_p: float,
          weight_p: float) -> list[Candidate]:  # fmt: skip
    """One merchant's first points; a top-level function, so a worker process can run it."""
    rows = (row for batch in deltas.to_batches(65_536)
            for row in zip(*(column.to_pylist() for column in batch.columns)))  # fmt: skip
    return [Candidate(chunk, merchant, customer)
            for chunk, customer in merchant_first_points(rows, minimum, count_p, weight_p)]


def _upgrade(con: duckdb.DuckDBPyConnection, settings: SettingsLike, catalogue: Catalogue,
             first: int, last: int) -> list[Candidate]:  # fmt: skip
    """PatId1's first points in first..last. Merchants are independent, so their walks run
    in worker processes when there is enough to walk (``PARALLEL_DELTAS``), at most one
    merchant per worker in flight."""
    rule = catalogue.percentile_rule
    if rule is None:
        return []
    args = rule.values(as_settings(settings))
    staged = _stage_deltas(con, {"last": last, "min_merchant_txns": args[0]})
    merchants = _merchant_deltas(con, staged)
    found: list[Candidate] = []
    workers = len(os.sched_getaffinity(0))
    if sum(n for _, n in staged) < PARALLEL_DELTAS or workers < 2:
        for merchant, deltas in merchants:
            found += _walk(merchant, deltas, *args)
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            running: set[Future[list[Candidate]]] = set()
            for merchant, deltas in merchants:
                if len(running) >= workers:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    found += [c for f in done for c in f.result()]
                running.add(pool.submit(_walk, merchant, deltas, *args))
            found += [c for f in running for c in f.result()]
    return [c for c in found if c.chunk >= first]


def upgrade_candidates(
    transactions: pa.Table, settings: SettingsLike, first: int, last: int,
    catalogue: Catalogue = CATALOGUE, memory_limit: str = MEMORY_LIMIT,
) -> list[Candidate]:  # fmt: skip
    """PatId1's first points that fall in first..last: each key at the first point of 0..last
    where it holds, when that point is in first..last (a key first met before ``first`` was
    an earlier range's). Ranges merged with ``first_points`` therefore equal a single run,
    provided every range's input holds chunks 0..its last.
    """
    if first < 0 or last < first:
        raise ValueError(f"bad chunk range {first}..{last}")
    with _connection(transactions, memory_limit) as con:
        return sorted(_upgrade(con, settings, catalogue, first, last))


def detections(transactions: pa.Table, settings: SettingsLike, catalogue: Catalogue = CATALOGUE,
               memory_limit: str = MEMORY_LIMIT,
               weights: pa.Table | None = None) -> list[Detection]:  # fmt: skip
    """Every detection of a finished stream at its first point, in SPEC 4.3 order
    (``transactions`` and ``weights`` as ``_connection`` takes them)."""
    s = as_settings(settings)
    found: list[Detection] = []
    with _connection(transactions, memory_limit, weights) as con:
        if (rule := catalogue.percentile_rule) is not None:
            found += [Detection(k, rule.pattern, m, c)
                      for k, m, c in _upgrade(con, s, catalogue, 0, _ALL)]  # fmt: skip
        if (sql := threshold_sql(catalogue)) is not None:
            conditions = [r.condition for r in (*catalogue.pair_rules, *catalogue.merchant_rules)]
            values = {**sql_parameters(conditions, s), "last": _ALL}
            rows = con.execute(sql, _params(sql, values)).fetchall()
            found += [Detection(int(k), int(p), m, c) for k, p, m, c in rows]
    return ordered(found)


def upgrade_detections(transactions: pa.Table, settings: SettingsLike) -> list[Detection]:
    """PatId1 alone over the whole stream."""
    return ordered(Detection(k, 1, m, c)
                   for k, m, c in upgrade_candidates(transactions, settings, 0, _ALL))  # fmt: skip
