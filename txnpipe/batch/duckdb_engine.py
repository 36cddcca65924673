"""PatId1 candidates and whole-stream detections with DuckDB SQL over the Arrow transactions.

Stats at evaluation point k are cumulative over chunks 0..k. Instead of recomputing them at
every point (quadratic), each (merchant, customer) pair gets one running state per chunk that
touched it, and a point (m, k) looks up every customer of m at its latest state with chunk
<= k (an ASOF join). Only merchants touched by chunk k are evaluated at k: an untouched
merchant's state equals its state at k - 1, so it cannot have a first detection at k.

``percentile_cont`` is DuckDB's exact ``quantile_cont`` (linear interpolation, as PostgreSQL);
comparisons with non-integer quantities allow ε = ``rules.EPS`` (SPEC 4.2). DuckDB's default
collation is binary, but the final order is applied in ``emit`` anyway.
"""
from __future__ import annotations

import re
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from txnpipe.batch import SettingsLike, as_settings
from txnpipe.batch.emit import Candidate, DetectionRow, ordered, upgrade_rows
from txnpipe.rules import EPS

_RUNNING = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"

# Per-pair deltas per chunk and running pair states; the input table is registered as "tx".
_STATES = f"""
t AS (SELECT * FROM tx WHERE chunk <= $last),
delta AS (
    SELECT merchant, customer, chunk,
           count(*) AS dn, count(weight) AS dwc,
           coalesce(sum(weight), 0.0) AS dws, sum(value) AS dvs
    FROM t GROUP BY merchant, customer, chunk
),
state AS (
    SELECT merchant, customer, chunk,
           CAST(sum(dn) OVER w AS BIGINT) AS n,
           CAST(sum(dwc) OVER w AS BIGINT) AS wc,
           sum(dws) OVER w AS ws,
           sum(dvs) OVER w AS vs
    FROM delta
    WINDOW w AS (PARTITION BY merchant, customer ORDER BY chunk {_RUNNING})
),
since AS (
    SELECT merchant, customer, min(chunk) AS since FROM delta GROUP BY merchant, customer
)"""

# PatId1 at every point (m, k), first <= k <= last, where k touched m and N(m) > the minimum.
_UPGRADE = f"""
merchant_state AS (
    SELECT merchant, chunk,
           CAST(sum(dn) OVER (PARTITION BY merchant ORDER BY chunk {_RUNNING}) AS BIGINT) AS total
    FROM (SELECT merchant, chunk, sum(dn) AS dn FROM delta GROUP BY merchant, chunk)
),
points AS (
    SELECT merchant, chunk AS k FROM merchant_state
    WHERE total > $upgrade_min AND chunk >= $first
),
grid AS (
    SELECT p.merchant, p.k, s.customer
    FROM points p JOIN since s ON s.merchant = p.merchant AND s.since <= p.k
),
at_point AS (
    SELECT g.merchant, g.k, g.customer, CAST(st.n AS DOUBLE) AS n,
           CASE WHEN st.wc > 0 THEN st.ws / st.wc END AS w
    FROM grid g ASOF JOIN state st
      ON st.merchant = g.merchant AND st.customer = g.customer AND g.k >= st.chunk
),
thresholds AS (
    SELECT merchant, k, quantile_cont(n, $count_p) AS tn, quantile_cont(w, $weight_p) AS tw
    FROM at_point GROUP BY merchant, k
),
upgrade AS (
    SELECT a.k AS chunk, a.merchant, a.customer
    FROM at_point a JOIN thresholds th ON th.merchant = a.merchant AND th.k = a.k
    WHERE a.w IS NOT NULL AND th.tw IS NOT NULL
      AND a.n >= th.tn - $eps AND a.w <= th.tw + $eps
)"""

UPGRADE_SQL = f"WITH {_STATES},{_UPGRADE}\nSELECT chunk, merchant, customer FROM upgrade"

# First points of PatId2 and PatId3 (their state only changes when the pair/merchant is touched).
_OTHERS = f"""
child AS (
    SELECT min(chunk) AS chunk, merchant, customer FROM state
    WHERE n >= $child_min AND vs / n < $child_max - $eps
    GROUP BY merchant, customer
),
first_gender AS (
    SELECT customer, arg_min(gender, record) AS gender FROM t GROUP BY customer
),
arrivals AS (
    SELECT s.merchant, s.since AS chunk,
           count(*) FILTER (WHERE g.gender = 'F') AS df,
           count(*) FILTER (WHERE g.gender = 'M') AS dm
    FROM since s JOIN first_gender g ON g.customer = s.customer
    GROUP BY s.merchant, s.since
),
dei_state AS (
    SELECT merchant, chunk,
           CAST(sum(df) OVER w AS BIGINT) AS f, CAST(sum(dm) OVER w AS BIGINT) AS m
    FROM arrivals
    WINDOW w AS (PARTITION BY merchant ORDER BY chunk {_RUNNING})
),
dei AS (
    SELECT min(chunk) AS chunk, merchant FROM dei_state
    WHERE f >= $dei_min AND CAST(f AS DOUBLE) < $dei_ratio * m - $eps
    GROUP BY merchant
)"""

DETECTIONS_SQL = f"""WITH {_STATES},{_UPGRADE},{_OTHERS}
SELECT min(chunk) AS chunk, 1 AS pattern, merchant, customer FROM upgrade
GROUP BY merchant, customer
UNION ALL SELECT chunk, 2, merchant, customer FROM child
UNION ALL SELECT chunk, 3, merchant, '' FROM dei"""


def _params(sql: str, values: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the statement uses: DuckDB refuses extra ones."""
    used = set(re.findall(r"\$(\w+)", sql))
    return {name: value for name, value in values.items() if name in used}


def _run(sql: str, transactions: pa.Table, settings: SettingsLike, **extra: int) -> list[Any]:
    s = as_settings(settings)
    values: dict[str, Any] = {
        "eps": EPS,
        "upgrade_min": int(s.upgrade_min_merchant_txns),
        "count_p": float(s.upgrade_count_percentile),
        "weight_p": float(s.upgrade_weight_percentile),
        "child_min": int(s.child_min_txns),
        "child_max": float(s.child_max_avg_value),
        "dei_min": int(s.dei_min_female_customers),
        "dei_ratio": float(s.dei_max_female_male_ratio),
        **extra,
    }
    with duckdb.connect() as con:
        con.register("tx", transactions)
        return con.execute(sql, _params(sql, values)).fetchall()


def upgrade_candidates(
    transactions: pa.Table, settings: SettingsLike, first: int, last: int
) -> list[Candidate]:
    """PatId1 holds for (merchant, customer) at point k, for points first..last inclusive.

    Only points whose chunk touched the merchant are listed (see the module docstring), so
    the first point per key over consecutive ranges merged with ``emit.first_points`` equals
    that of a single run, provided every range's input holds chunks 0..its last.
    """
    if first < 0 or last < first:
        raise ValueError(f"bad chunk range {first}..{last}")
    rows = _run(UPGRADE_SQL, transactions, settings, first=first, last=last)
    return sorted(Candidate(int(k), m, c) for k, m, c in rows)


def detections(transactions: pa.Table, settings: SettingsLike) -> list[DetectionRow]:
    """Every detection of a finished stream at its first point, in SPEC 4.3 order."""
    rows = _run(DETECTIONS_SQL, transactions, settings, first=0, last=2**31 - 1)
    return ordered(DetectionRow(int(k), int(p), m, c) for k, p, m, c in rows)


def upgrade_detections(transactions: pa.Table, settings: SettingsLike) -> list[DetectionRow]:
    """PatId1 alone over the whole stream, via the candidates (emit-once applied in Python)."""
    last = pc.max(transactions["chunk"]).as_py()
    if last is None:
        return []
    return ordered(upgrade_rows(upgrade_candidates(transactions, settings, 0, last)))
