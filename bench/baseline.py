"""The recompute-everything baseline: the usual first design, against which txnpipe is measured.

It is deliberately plain, the way the task is commonly built:

* the chunker GETs the WHOLE input file from S3 on every tick and slices records
  ``1000k .. 1000k+999`` out of it by lines (so a tick costs O(file));
* the detector appends each chunk to one ``all_transactions`` table and then recomputes every
  pattern over the full history with one SQL statement (GROUP BY, ``percentile_cont``, distinct
  customers by gender), emitting only detections not seen before (so a chunk costs O(history)).

Parsing reuses txnpipe's own record parser and weights reader, so both designs do identical
per-record Python work and the comparison isolates the design (what each tick and each chunk
reads and recomputes), and so the baseline's detections can be checked against txnpipe's.
It lives in its own database on the same embedded PostgreSQL server.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from data import Dataset
from measure import upload

from txnpipe.aws.s3store import S3Store
from txnpipe.core.chunkparse import parse_chunk
from txnpipe.core.detections import RecordedDetection, detections_csv
from txnpipe.core.keys import chunk_key, detections_key, manifest_key, source_name
from txnpipe.core.rules import EPS
from txnpipe.core.settings import Settings
from txnpipe.core.weights import parse_weights

SCHEMA = """
DROP SCHEMA IF EXISTS baseline CASCADE;
CREATE SCHEMA baseline;
CREATE TABLE baseline.pointer (source text PRIMARY KEY, next_chunk int NOT NULL);
CREATE TABLE baseline.importance (
    customer text COLLATE "C", merchant text COLLATE "C", kind text COLLATE "C",
    weight float8 NOT NULL, PRIMARY KEY (customer, merchant, kind));
CREATE TABLE baseline.all_transactions (
    record bigint, chunk int, customer text COLLATE "C", merchant text COLLATE "C",
    value float8, gender text COLLATE "C", kind text COLLATE "C");
CREATE TABLE baseline.detections (
    pattern smallint, merchant text COLLATE "C", customer text COLLATE "C", chunk int,
    y_start timestamptz, detected_at timestamptz, PRIMARY KEY (pattern, merchant, customer));
"""

# Every pattern over the full history, every chunk. {weight_merchant} is t.merchant for
# BankSim weights (keyed by customer, merchant, type) and '' for seed weights.
RECOMPUTE = """
WITH genders AS (
    SELECT DISTINCT ON (customer) customer, gender
    FROM baseline.all_transactions ORDER BY customer, record
), pairs AS (
    SELECT t.merchant, t.customer, count(*) AS n, avg(t.value) AS avg_value, avg(i.weight) AS w
    FROM baseline.all_transactions t
    LEFT JOIN baseline.importance i
           ON i.customer = t.customer AND i.merchant = {weight_merchant} AND i.kind = t.kind
    GROUP BY t.merchant, t.customer
), merchants AS (
    SELECT p.merchant, sum(p.n) AS n,
           percentile_cont(%(count_p)s) WITHIN GROUP (ORDER BY p.n) AS tn,
           percentile_cont(%(weight_p)s) WITHIN GROUP (ORDER BY p.w) AS tw,
           count(*) FILTER (WHERE g.gender = 'F') AS females,
           count(*) FILTER (WHERE g.gender = 'M') AS males
    FROM pairs p JOIN genders g USING (customer)
    GROUP BY p.merchant
), found AS (
    SELECT 1 AS pattern, p.merchant, p.customer
    FROM pairs p JOIN merchants m USING (merchant)
    WHERE m.n > %(upgrade_min)s AND p.n >= m.tn - %(eps)s AND p.w <= m.tw + %(eps)s
  UNION ALL
    SELECT 2, merchant, customer FROM pairs
    WHERE n >= %(child_min)s AND avg_value < %(child_max)s - %(eps)s
  UNION ALL
    SELECT 3, merchant, '' FROM merchants
    WHERE females >= %(dei_min)s AND females < %(dei_ratio)s * males - %(eps)s
)
INSERT INTO baseline.detections (pattern, merchant, customer, chunk, y_start, detected_at)
SELECT pattern, merchant, customer, %(chunk)s, %(y_start)s, clock_timestamp() FROM found
ON CONFLICT (pattern, merchant, customer) DO NOTHING
"""


@dataclass
class BaselineResult:
    seconds: float  # end to end: upload, weights, every tick and chunk, the last file
    chunker: list[float] = field(default_factory=list)  # per tick
    detector: list[float] = field(default_factory=list)  # per chunk
    detections: int = 0


@dataclass
class Baseline:
    conn: psycopg.Connection
    store: S3Store
    settings: Settings
    source: str
    input_key: str
    recompute: str
    detections: int = 0
    files_written: int = 0

    @classmethod
    def start(cls, db_url: str, store: S3Store, data: Dataset, settings: Settings) -> Baseline:
        conn = psycopg.connect(db_url, autocommit=True)
        conn.execute(SCHEMA)
        weights = parse_weights(store.get(f"inputs/{data.importance.name}"))
        with conn.cursor().copy(
            "COPY baseline.importance (customer, merchant, kind, weight) FROM STDIN"
        ) as copy:
            for (customer, merchant, kind), weight in weights.by_key.items():
                copy.write_row((customer, merchant, kind, weight))
        source = source_name(data.transactions.name)
        conn.execute("INSERT INTO baseline.pointer VALUES (%s, 0)", (source,))
        recompute = RECOMPUTE.format(
            weight_merchant="t.merchant" if weights.keyed_by_merchant else "''"
        )
        return cls(conn, store, settings, source, f"inputs/{data.transactions.name}", recompute)

    def chunker_tick(self) -> tuple[int, bool]:
        """Write the next chunk from the whole file; returns (chunk, whether it was the last)."""
        n = self.settings.chunk_rows
        (k,) = self.conn.execute(
            "SELECT next_chunk FROM baseline.pointer WHERE source = %s", (self.source,)
        ).fetchone()  # type: ignore[misc]
        lines = self.store.get(self.input_key).splitlines(keepends=True)
        first = 1 + k * n
        self.store.put(chunk_key(self.source, k), lines[0] + b"".join(lines[first : first + n]))
        last = first + n >= len(lines)
        if last:
            manifest = {"chunks": k + 1, "records": len(lines) - 1}
            self.store.put(manifest_key(self.source), json.dumps(manifest).encode())
        self.conn.execute(
            "UPDATE baseline.pointer SET next_chunk = %s WHERE source = %s", (k + 1, self.source)
        )
        return k, last

    def detector_apply(self, k: int) -> int:
        """Append chunk k to the history, recompute everything, emit what is new."""
        y_start = datetime.now(UTC)
        parsed = parse_chunk(self.store.get(chunk_key(self.source, k)), k, self.settings.chunk_rows)
        s = self.settings
        with self.conn.transaction():
            with self.conn.cursor().copy(
                "COPY baseline.all_transactions"
                " (record, chunk, customer, merchant, value, gender, kind) FROM STDIN"
            ) as copy:
                for t in parsed.transactions:
                    copy.write_row((t.record, k, t.customer, t.merchant, t.value, t.gender, t.kind))
            found = self.conn.execute(self.recompute, {
                "chunk": k, "y_start": y_start, "eps": EPS,
                "count_p": s.upgrade_count_percentile, "weight_p": s.upgrade_weight_percentile,
                "upgrade_min": s.upgrade_min_merchant_txns,
                "child_min": s.child_min_txns, "child_max": float(s.child_max_avg_value),
                "dei_min": s.dei_min_female_customers,
                "dei_ratio": float(s.dei_max_female_male_ratio),
            }).rowcount  # fmt: skip
        self.detections += max(found, 0)
        self.flush(ended=False)
        return found

    def flush(self, ended: bool) -> None:
        """Detection files of exactly ``detection_batch_rows`` rows, the last one at the end."""
        batch = self.settings.detection_batch_rows
        while self.detections - self.files_written * batch >= (1 if ended else batch):
            rows = self.conn.execute(
                "SELECT chunk, pattern, merchant, customer, y_start, detected_at"
                " FROM baseline.detections ORDER BY chunk, pattern, merchant, customer"
                " OFFSET %s LIMIT %s",
                (self.files_written * batch, batch),
            ).fetchall()
            key = detections_key(self.source, self.files_written)
            self.store.put(key, detections_csv(RecordedDetection(*r) for r in rows))
            self.files_written += 1

    def detection_set(self) -> set[tuple[int, int, str, str]]:
        rows = self.conn.execute(
            "SELECT chunk, pattern, merchant, customer FROM baseline.detections"
        ).fetchall()
        return {tuple(r) for r in rows}  # type: ignore[misc]


def run_baseline(
    db_url: str, endpoint: str, data: Dataset, settings: Settings,
    on_chunk: Callable[[int, float, float], None] = lambda k, c, d: None,
) -> tuple[BaselineResult, set[tuple[int, int, str, str]]]:  # fmt: skip
    """The whole stream through the baseline, ticks and chunks timed one by one."""
    started = time.perf_counter()
    store = upload(endpoint, "bench-baseline", data.transactions, data.importance)
    base = Baseline.start(db_url, store, data, settings)
    result = BaselineResult(0.0)
    try:
        last = False
        while not last:
            t0 = time.perf_counter()
            k, last = base.chunker_tick()
            t1 = time.perf_counter()
            base.detector_apply(k)
            t2 = time.perf_counter()
            result.chunker.append(t1 - t0)
            result.detector.append(t2 - t1)
            on_chunk(k, t1 - t0, t2 - t1)
        base.flush(ended=True)
        result.seconds = time.perf_counter() - started
        result.detections = base.detections
        return result, base.detection_set()
    finally:
        base.conn.close()
