"""The in-process DuckDB peer: the best plain single-node design txnpipe is compared against.

One process, one in-memory DuckDB database, no S3, no PostgreSQL, no durable state: nothing
survives a crash, and nothing is paced or retried. It replays a transactions file chunk by
chunk, keeping incremental aggregates (per pair: count, value sum, weight sum and count; per
merchant: N and the distinct female and male customers), and after each chunk evaluates
the three patterns (SPEC 4.2) for the merchants that chunk touched only, emitting each key
once, at the first chunk where it holds.

Records are cut and cleaned by txnpipe's own code (``csvscan`` for record boundaries,
``parse_chunk`` through ``frames.transactions_table``, ``parse_weights``), so the peer sees
exactly the records and weights txnpipe sees and its detections can be checked equal to
txnpipe's. Its wall time is what a simple, fast, but not fault-tolerant program would take:
the price txnpipe's figures pay for durability and exactly-once output is measured against it.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from txnpipe.batch.frames import transactions_table
from txnpipe.core.csvscan import BOM, iter_records
from txnpipe.core.rules import EPS
from txnpipe.core.settings import Settings
from txnpipe.core.weights import Weights, parse_weights

SCHEMA = """
CREATE TABLE pairs (merchant VARCHAR, customer VARCHAR, n BIGINT, wc BIGINT, ws DOUBLE,
                    vs DOUBLE, PRIMARY KEY (merchant, customer));
CREATE TABLE merchants (merchant VARCHAR PRIMARY KEY, n BIGINT, females BIGINT, males BIGINT);
CREATE TABLE genders (customer VARCHAR PRIMARY KEY, gender VARCHAR);
CREATE TABLE emitted (pattern INTEGER, merchant VARCHAR, customer VARCHAR,
                      PRIMARY KEY (pattern, merchant, customer));
"""

# One chunk (registered as ``chunk``) into the running aggregates, in this order.
APPLY = [
    # A customer's gender is the one on its first accepted record in stream order.
    """INSERT INTO genders SELECT customer, arg_min(gender, record) FROM chunk
       WHERE customer NOT IN (SELECT customer FROM genders) GROUP BY customer""",
    # The chunk's per-pair deltas, each marked whether the pair is new to its merchant.
    """CREATE OR REPLACE TEMP TABLE delta AS
       SELECT d.*, p.merchant IS NULL AS new_pair, g.gender
       FROM (SELECT merchant, customer, count(*) AS n, count(weight) AS wc,
                    coalesce(sum(weight), 0) AS ws, sum(value) AS vs
             FROM chunk GROUP BY merchant, customer) d
       LEFT JOIN pairs p USING (merchant, customer)
       JOIN genders g USING (customer)""",
    """INSERT INTO merchants
       SELECT merchant, sum(n), count(*) FILTER (WHERE new_pair AND gender = 'F'),
              count(*) FILTER (WHERE new_pair AND gender = 'M')
       FROM delta GROUP BY merchant
       ON CONFLICT DO UPDATE SET n = n + excluded.n, females = females + excluded.females,
                                 males = males + excluded.males""",
    """INSERT INTO pairs SELECT merchant, customer, n, wc, ws, vs FROM delta
       ON CONFLICT DO UPDATE SET n = n + excluded.n, wc = wc + excluded.wc,
                                 ws = ws + excluded.ws, vs = vs + excluded.vs""",
]

# The patterns that hold now, for the merchants (PatId1, PatId3) and pairs (PatId2) the
# chunk touched, less those already emitted. PatId1 looks at every customer of a touched
# merchant: its thresholds moved, so a customer the chunk did not touch may now hold.
EVALUATE = """
WITH touched AS (SELECT DISTINCT merchant FROM delta),
upgrade_pairs AS (
    SELECT p.merchant, p.customer, p.n, CASE WHEN p.wc > 0 THEN p.ws / p.wc END AS w
    FROM pairs p JOIN touched USING (merchant) JOIN merchants m USING (merchant)
    WHERE m.n > $upgrade_min
), thresholds AS (
    SELECT merchant, quantile_cont(n, $count_p) AS tn, quantile_cont(w, $weight_p) AS tw
    FROM upgrade_pairs GROUP BY merchant
), found AS (
    SELECT 1 AS pattern, p.merchant, p.customer
    FROM upgrade_pairs p JOIN thresholds t USING (merchant)
    WHERE p.n >= t.tn - $eps AND p.w <= t.tw + $eps
  UNION ALL
    SELECT 2, p.merchant, p.customer FROM pairs p JOIN delta d USING (merchant, customer)
    WHERE p.n >= $child_min AND p.vs / p.n < $child_max - $eps
  UNION ALL
    SELECT 3, m.merchant, '' FROM merchants m JOIN touched USING (merchant)
    WHERE m.females >= $dei_min AND m.females < $dei_ratio * m.males - $eps
)
INSERT INTO emitted
SELECT * FROM found f WHERE NOT EXISTS (
    SELECT 1 FROM emitted e
    WHERE e.pattern = f.pattern AND e.merchant = f.merchant AND e.customer = f.customer)
RETURNING pattern, merchant, customer
"""


@dataclass(frozen=True)
class PeerResult:
    seconds: float  # wall time of the replay, from reading the file to the last chunk evaluated
    chunks: int
    detections: set[tuple[int, int, str, str]]  # (chunk, pattern, merchant, customer)


def chunk_files(data: bytes, chunk_rows: int) -> Iterator[bytes]:
    """The chunk files' bytes (SPEC 3): the header line, then each chunk's records, as is."""
    records = iter_records(data.removeprefix(BOM))
    header = next(records, b"")
    chunk: list[bytes] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == chunk_rows:
            yield header + b"".join(chunk)
            chunk = []
    if chunk:
        yield header + b"".join(chunk)


def apply_chunk(con: duckdb.DuckDBPyConnection, k: int, data: bytes, weights: Weights,
                settings: Settings, params: dict[str, float | int]) -> list[tuple[int, str, str]]:
    """Chunk k into the aggregates; the detections first holding at k."""
    con.register("chunk", transactions_table([(k, data)], weights, settings.chunk_rows))
    for statement in APPLY:
        con.execute(statement)
    con.unregister("chunk")
    return con.execute(EVALUATE, params).fetchall()


def run_peer(transactions: Path, importance: Path, settings: Settings,
             progress: Callable[[int], None] | None = None) -> PeerResult:
    """Replay the whole file; every detection at the chunk it is first emitted."""
    started = time.perf_counter()
    weights = parse_weights(importance.read_bytes())
    params = {
        "eps": EPS, "upgrade_min": settings.upgrade_min_merchant_txns,
        "count_p": settings.upgrade_count_percentile,
        "weight_p": settings.upgrade_weight_percentile,
        "child_min": settings.child_min_txns, "child_max": float(settings.child_max_avg_value),
        "dei_min": settings.dei_min_female_customers,
        "dei_ratio": float(settings.dei_max_female_male_ratio),
    }  # fmt: skip
    detections: set[tuple[int, int, str, str]] = set()
    chunks = 0
    with duckdb.connect() as con:
        con.execute(SCHEMA)
        for k, data in enumerate(chunk_files(transactions.read_bytes(), settings.chunk_rows)):
            found = apply_chunk(con, k, data, weights, settings, params)
            detections |= {(k, *row) for row in found}
            chunks = k + 1
            if progress is not None:
                progress(k)
    return PeerResult(time.perf_counter() - started, chunks, detections)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: peer.py TRANSACTIONS IMPORTANCE")
    result = run_peer(Path(sys.argv[1]), Path(sys.argv[2]), Settings())
    print(f"seconds {result.seconds:.2f}")
    print(f"chunks {result.chunks}")
    print(f"detections {len(result.detections)}")
