"""The rules of a catalogue with DuckDB SQL over the Arrow transactions (``sql/*.sql``).

Stats at evaluation point k are cumulative over chunks 0..k. Instead of recomputing them at
every point (quadratic), each (merchant, customer) pair gets one running state per chunk that
touched it, and each merchant too. A threshold rule's first point is the first state of a
pair (or merchant) that meets its condition, rendered from the catalogue. PatId1 at point
(m, k) looks up every customer of m at its latest state with chunk <= k (an ASOF join); only
merchants touched by chunk k are evaluated at k: an untouched merchant's state equals its
state at k - 1, so it cannot have a first detection at k.

``percentile_cont`` is DuckDB's exact ``quantile_cont`` (linear interpolation, as
PostgreSQL); comparisons with non-integer quantities allow ε (SPEC 4.2). DuckDB's default
collation is binary, but the final order is applied in ``core.detections`` anyway.
"""
from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from txnpipe.batch import SettingsLike, as_settings
from txnpipe.core.detections import Candidate, Detection, first_detections, ordered
from txnpipe.core.rules import CATALOGUE, Catalogue
from txnpipe.core.rules.aggregates import MERCHANT_SQL, PAIR_SQL
from txnpipe.core.rules.expressions import SqlDialect, render, sql_parameters

_PAIRS = SqlDialect(PAIR_SQL, placeholder="${name}", eps="$eps")
_MERCHANTS = SqlDialect(MERCHANT_SQL, placeholder="${name}", eps="$eps")


@cache
def _sql(name: str) -> str:
    return resources.files("txnpipe.batch").joinpath("sql", f"{name}.sql").read_text()


def _upgrade_sql() -> str:
    return f"WITH {_sql('states')},{_sql('upgrade')}\nSELECT chunk, merchant, customer FROM upgrade"


@cache
def detections_sql(catalogue: Catalogue) -> str:
    """Every rule's first points, one branch each, over the shared states."""
    ctes = [_sql("states"), _sql("merchant_states")]
    branches = [
        _sql(template).replace("__PATTERN__", str(rule.pattern))
        .replace("__CONDITION__", render(rule.condition, dialect))
        for rules, template, dialect in ((catalogue.pair_rules, "pair_rule", _PAIRS),
                                         (catalogue.merchant_rules, "merchant_rule", _MERCHANTS))
        for rule in rules
    ]  # fmt: skip
    if (upgrade := catalogue.percentile_rule) is not None:
        ctes.append(_sql("upgrade"))
        branches.append(_sql("upgrade_first_points").replace("__PATTERN__", str(upgrade.pattern)))
    return "WITH " + ",\n".join(ctes) + "\n" + "UNION ALL\n".join(branches)


def _params(sql: str, values: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the statement uses: DuckDB refuses extra ones."""
    used = set(re.findall(r"\$(\w+)", re.sub(r"--[^\n]*", "", sql)))
    return {name: value for name, value in values.items() if name in used}


def _run(sql: str, transactions: pa.Table, settings: SettingsLike, catalogue: Catalogue,
         **extra: int) -> list[Any]:  # fmt: skip
    s = as_settings(settings)
    conditions = [r.condition for r in (*catalogue.pair_rules, *catalogue.merchant_rules)]
    values: dict[str, Any] = {**sql_parameters(conditions, s), **extra}
    if catalogue.percentile_rule is not None:
        minimum, count_p, weight_p = catalogue.percentile_rule.values(s)
        values |= {"min_merchant_txns": minimum, "count_p": count_p, "weight_p": weight_p}
    with duckdb.connect() as con:
        con.register("tx", transactions)
        return con.execute(sql, _params(sql, values)).fetchall()


def upgrade_candidates(
    transactions: pa.Table, settings: SettingsLike, first: int, last: int,
    catalogue: Catalogue = CATALOGUE,
) -> list[Candidate]:  # fmt: skip
    """PatId1 holds for (merchant, customer) at point k, for points first..last inclusive.

    Only points whose chunk touched the merchant are listed (see the module docstring), so
    the first point per key over consecutive ranges merged with ``first_points`` equals
    that of a single run, provided every range's input holds chunks 0..its last.
    """
    if first < 0 or last < first:
        raise ValueError(f"bad chunk range {first}..{last}")
    rows = _run(_upgrade_sql(), transactions, settings, catalogue, first=first, last=last)
    return sorted(Candidate(int(k), m, c) for k, m, c in rows)


def detections(transactions: pa.Table, settings: SettingsLike,
               catalogue: Catalogue = CATALOGUE) -> list[Detection]:  # fmt: skip
    """Every detection of a finished stream at its first point, in SPEC 4.3 order."""
    rows = _run(detections_sql(catalogue), transactions, settings, catalogue,
                first=0, last=2**31 - 1)  # fmt: skip
    return ordered(Detection(int(k), int(p), m, c) for k, p, m, c in rows)


def upgrade_detections(transactions: pa.Table, settings: SettingsLike) -> list[Detection]:
    """PatId1 alone over the whole stream, via the candidates (emit-once applied in Python)."""
    last = pc.max(transactions["chunk"]).as_py()
    if last is None:
        return []
    return ordered(first_detections(upgrade_candidates(transactions, settings, 0, last)))
