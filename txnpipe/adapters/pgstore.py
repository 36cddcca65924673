"""PostgreSQL behind the core's seams: the chunker's pointer and the detector's state.

Every chunk is applied in one transaction of a handful of set-based statements over that
chunk's rows only: the aggregates are updated incrementally and the patterns evaluated
for the pairs and merchants the chunk touched, so the cost of a chunk does not grow with
the history. Every value reaches the server as a bound parameter.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from txnpipe.detections import Detection
from txnpipe.errors import TxnpipeError
from txnpipe.layouts import Transaction
from txnpipe.ports import Candidate, ObjectVersion, Pointer, StreamProgress, UpgradeRun
from txnpipe.rules import EPS, at_most, interpolate, least_count_at_least, percentile_ranks
from txnpipe.settings import Settings
from txnpipe.weights import WeightRows

_SCHEMA_LOCK = 7_301_001
_WRITER_LOCK = 7_301_002


# The version of schema.sql: bumped with every change to it, so that a database holding
# this version is left alone at connect.
SCHEMA_VERSION = 6
# The database roles of the deployed functions (created by ``migrate``): the chunker's may
# touch only the pointer tables, the detector's only its own.
CHUNKER_ROLE = "txnpipe_chunker"
DETECTOR_ROLE = "txnpipe_detector"


# Unless the URL says otherwise: a connection attempt gives up after 10 s, and a connection
# whose server went silent is found dead within about a minute (TCP keepalives), so that a
# lost database becomes an error to retry instead of a hang.
_CONNECT_DEFAULTS = {"connect_timeout": "10", "keepalives": "1", "keepalives_idle": "30",
                     "keepalives_interval": "10", "keepalives_count": "3"}  # fmt: skip


def connect(url: str) -> psycopg.Connection:
    """Autocommit, with explicit transactions; no server-side prepares (RDS Proxy pinning)."""
    params = {**_CONNECT_DEFAULTS, **psycopg.conninfo.conninfo_to_dict(url)}
    conn = psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True,
                           prepare_threshold=None)  # fmt: skip
    ensure_schema(conn)
    return conn


def _schema_version(conn: psycopg.Connection) -> int | None:
    if conn.execute("SELECT to_regclass('txnpipe.schema_version')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT max(version) FROM txnpipe.schema_version").fetchone()
    return None if row is None else row[0]


def _current(version: int | None) -> bool:
    """A database at this version, or a later one (the code of a deploy rolled back runs on
    the schema the newer code left: every change to it only adds)."""
    return version is not None and version >= SCHEMA_VERSION


def ensure_schema(conn: psycopg.Connection) -> None:
    """Bring the schema to this version, serialised so concurrent cold starts don't race on
    DDL; a database that is current already is only read (one small query). A role that may
    not change the schema (the deployed functions') gets a clear error instead."""
    version = _schema_version(conn)
    if _current(version):
        return
    ddl = resources.files("txnpipe.adapters").joinpath("schema.sql").read_text()
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            if _current(_schema_version(conn)):
                return
            conn.execute(ddl)
            conn.execute("DELETE FROM txnpipe.schema_version")
            conn.execute("INSERT INTO txnpipe.schema_version (version) VALUES (%s)",
                         (SCHEMA_VERSION,))  # fmt: skip
    except psycopg.errors.InsufficientPrivilege:
        raise TxnpipeError(
            f"the database's txnpipe schema is at version {version or 0}, this code needs "
            f"{SCHEMA_VERSION}, and this role may not migrate it: run the migration (a deploy "
            "does, through its migrator function)"
        ) from None


def migrate(conn: psycopg.Connection, role_passwords: Mapping[str, str] | None = None) -> None:
    """The deployment's migration, run with the master credentials: the schema, then the two
    function roles with only their own tables (``roles.sql``), and each role's password when
    given (role name -> password, from the role's own secret)."""
    ensure_schema(conn)
    grants = resources.files("txnpipe.adapters").joinpath("roles.sql").read_text()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        conn.execute(grants)
        for role, password in (role_passwords or {}).items():
            if role not in (CHUNKER_ROLE, DETECTOR_ROLE):
                raise ValueError(f"{role!r} is not a txnpipe function role")
            statement = sql.SQL("ALTER ROLE {} PASSWORD {}")  # DDL takes no bound parameters
            conn.execute(statement.format(sql.Identifier(role), sql.Literal(password)))


def source_id(conn: psycopg.Connection, source: str) -> int:
    """The source's id, registering it on first sight (one look-up once it is known)."""
    find = "SELECT source_id FROM txnpipe.sources WHERE name = %s"
    row = conn.execute(find, (source,)).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO txnpipe.sources (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
            (source,),
        )
        row = conn.execute(find, (source,)).fetchone()
    assert row is not None
    return int(row[0])


_SOURCE_TABLES = (
    "chunker_state", "detector_state", "arrivals", "chunk_log", "weights", "history",
    "customers", "pairs", "merchants", "detections",
)  # fmt: skip


def reset_source(conn: psycopg.Connection, source: str) -> None:
    """Forget a source entirely, so a local replay starts from chunk 0."""
    with conn.transaction():
        sid = source_id(conn, source)
        for table in _SOURCE_TABLES:
            statement = sql.SQL("DELETE FROM txnpipe.{} WHERE source_id = %s")
            conn.execute(statement.format(sql.Identifier(table)), (sid,))


@dataclass
class PgChunkerState:
    conn: psycopg.Connection

    @contextmanager
    def writer_lock(self, source: str) -> Iterator[bool]:
        sid = source_id(self.conn, source)
        row = self.conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (_WRITER_LOCK, sid)
        ).fetchone()
        acquired = bool(row and row[0])
        try:
            yield acquired
        finally:
            if acquired:
                self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_WRITER_LOCK, sid))

    def load(self, source: str) -> Pointer | None:
        row = self.conn.execute(
            "SELECT c.input_key, c.header, c.started_at, c.next_chunk, c.next_offset,"
            " c.records, c.done, c.input_version_id, c.input_etag FROM txnpipe.chunker_state c"
            " JOIN txnpipe.sources s USING (source_id) WHERE s.name = %s",
            (source,),
        ).fetchone()
        if row is None:
            return None
        version = ObjectVersion(row[7], row[8]) if row[8] is not None else None
        return Pointer(source, row[0], bytes(row[1]), *row[2:7], version)

    def save(self, p: Pointer) -> None:
        version = p.input_version
        self.conn.execute(
            "INSERT INTO txnpipe.chunker_state (source_id, input_key, header, started_at,"
            " next_chunk, next_offset, records, done, input_version_id, input_etag)"
            " VALUES ((SELECT source_id FROM txnpipe.sources WHERE name = %s),"
            " %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (source_id) DO UPDATE SET next_chunk = EXCLUDED.next_chunk,"
            " next_offset = EXCLUDED.next_offset, records = EXCLUDED.records,"
            " done = EXCLUDED.done, updated_at = now()",
            (p.source, p.input_key, p.header, p.started_at, p.next_chunk, p.next_offset,
             p.records, p.done, version and version.version_id, version and version.etag),
        )  # fmt: skip


_PROGRESS = (
    "SELECT next_chunk, total_chunks, detections, files_written, upgrade_through,"
    " weights_layout, upgrade_run, upgrade_first, upgrade_last,"
    " ARRAY(SELECT a.chunk FROM txnpipe.arrivals a"
    "       WHERE a.source_id = d.source_id AND a.chunk >= d.next_chunk)"
    " FROM txnpipe.detector_state d WHERE source_id = %s FOR UPDATE"
)

# A chunk's records reach the history through a temporary table, so that each is stored
# with its weight, looked up once here and never again. A transaction's weight is keyed
# by (customer, merchant, kind) for BankSim weights, by (customer, kind) for seed weights
# (stored with merchant ''); the scalar subquery keeps the look-up an index probe per
# record (of weights_by_key, the key's hash) whatever the planner guesses of the temporary
# table.
_INCOMING = (
    'CREATE TEMP TABLE IF NOT EXISTS incoming (record bigint, customer text COLLATE "C",'
    ' merchant text COLLATE "C", value float8, gender text COLLATE "C", kind text COLLATE "C")'
    " ON COMMIT DELETE ROWS"
)
_COPY_INCOMING = "COPY incoming (record, customer, merchant, value, gender, kind) FROM STDIN"
_INSERT_HISTORY = """
INSERT INTO txnpipe.history
    (source_id, record, chunk, customer, merchant, value, gender, kind, weight)
SELECT %(sid)s, i.record, %(chunk)s, i.customer, i.merchant, i.value, i.gender, i.kind,
       (SELECT w.weight FROM txnpipe.weights w
        WHERE w.source_id = %(sid)s
          AND txnpipe.weight_key(w.customer, w.merchant, w.kind)
              = txnpipe.weight_key(i.customer, {weight_merchant}, i.kind)
          AND w.customer = i.customer AND w.kind = i.kind AND w.merchant = {weight_merchant})
FROM incoming i
ON CONFLICT (source_id, record) DO NOTHING  -- another detector staged the chunk meanwhile
"""
_INSERT_HISTORY_BY_MERCHANT = _INSERT_HISTORY.format(weight_merchant="i.merchant")
_INSERT_HISTORY_BY_KIND = _INSERT_HISTORY.format(weight_merchant="''")


# Customers are recorded with the history, so that applying a chunk only reads them. A
# customer's gender is that of their first accepted record: chunks are written in order,
# and should one ever come late, its earlier record still wins. Customers known from an
# earlier record are left out before the upsert, which would lock each of them; a
# customer's first record in the chunk is found first, so each is probed once, not once
# per record (its later records cannot be new where its first is not).
_NEW_CUSTOMERS = """
INSERT INTO txnpipe.customers AS c (source_id, customer, gender, first_record)
SELECT %(sid)s, customer, gender, record
FROM (SELECT DISTINCT ON (customer) customer, gender, record FROM txnpipe.history
      WHERE source_id = %(sid)s AND record >= %(lo)s AND record < %(hi)s
      ORDER BY customer, record) h
WHERE NOT EXISTS (SELECT FROM txnpipe.customers k WHERE k.source_id = %(sid)s
                  AND k.customer = h.customer AND k.first_record <= h.record)
ON CONFLICT (source_id, customer) DO UPDATE
SET gender = EXCLUDED.gender, first_record = EXCLUDED.first_record
WHERE EXCLUDED.first_record < c.first_record
"""


def _write_history(
    conn: psycopg.Connection, sid: int, chunk: int, transactions: Sequence[Transaction],
    by_merchant: bool,
) -> None:  # fmt: skip
    """A chunk's records into the history and its new customers, in the caller's
    transaction, unless they are there already (staged, or written by a detector that
    then crashed)."""
    if not transactions or _has_record(conn, sid, transactions[0].record):
        return
    conn.execute(_INCOMING)
    with conn.cursor().copy(_COPY_INCOMING) as copy:
        copy.write(_copy_text(transactions))
    statement = _INSERT_HISTORY_BY_MERCHANT if by_merchant else _INSERT_HISTORY_BY_KIND
    conn.execute(statement, {"sid": sid, "chunk": chunk})
    first, last = transactions[0].record, transactions[-1].record
    conn.execute(_NEW_CUSTOMERS, {"sid": sid, "lo": first, "hi": last + 1})


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(rows: Sequence[tuple[str | float | int, ...]]) -> str:
    """Rows of one width in COPY's text format, built in one piece (a row at a time
    through ``write_row`` costs more than the server's insert). ``%s`` of a number is its
    ``repr``, which reads back to the same value. Counting tabs and line breaks over the
    whole text tells whether any value holds one (the counts only grow); only then, or for
    a backslash, is each value escaped."""
    width = len(rows[0]) if rows else 0
    line = "\t".join(["%s"] * width)
    text = "\n".join([line % row for row in rows])
    if (text.count("\t") != (width - 1) * len(rows) or text.count("\n") != len(rows) - 1
            or "\\" in text or "\r" in text):  # fmt: skip
        escaped = ("\t".join([str(v).translate(_COPY_ESCAPES) for v in row]) for row in rows)
        text = "\n".join(escaped)
    return text + "\n" if rows else ""


# A chunk is applied with a few statements over that chunk's rows only, whose plans stay
# index look-ups and small hashes whatever the row estimates (the planner has no statistics
# for a CTE, so no statement joins two CTEs row by row). The history and the customers are
# written already. Every pair the chunk touches is upserted once, and what it was before
# is read from what the upsert returns (it is new when created by this chunk; its mean
# weight before is kept in w_before), so no row is looked up twice. Only what the chunk
# touched can start to hold, so the RETURNING rows give the PatId2 and PatId3 candidates
# and the touched merchants past the PatId1 threshold, whose customers are then
# re-evaluated (their thresholds move), with how many mean-weight keys the chunk moved
# below their cursor.
_AGGREGATE = """
WITH floors AS MATERIALIZED (
    -- one map of the merchants' count floors, looked up by key for every touched pair (a
    -- list of them would be scanned for each)
    SELECT coalesce(jsonb_object_agg(merchant, count_floor), '{}') AS floor_of
    FROM txnpipe.merchants WHERE source_id = %(sid)s AND count_floor IS NOT NULL
), agg AS (
    SELECT merchant, customer, count(*) AS n, sum(value) AS value_sum,
           coalesce(sum(weight), 0) AS weight_sum, count(weight) AS weighted,
           CASE WHEN min(weight) = max(weight) THEN min(weight)
                ELSE sum(weight) / count(weight) END AS w
    FROM txnpipe.history
    WHERE source_id = %(sid)s AND record >= %(lo)s AND record < %(hi)s
    GROUP BY merchant, customer
), pair_rows AS (
    INSERT INTO txnpipe.pairs AS p
        (source_id, merchant, customer, n, value_sum, weight_sum, weighted, w, top_n,
         first_chunk)
    SELECT %(sid)s, merchant, customer, n, value_sum, weight_sum, weighted, w,
           CASE WHEN n >= ((SELECT floor_of FROM floors) ->> merchant)::int THEN n END,
           %(chunk)s
    FROM agg
    ON CONFLICT (source_id, merchant, customer) DO UPDATE SET
        n = p.n + EXCLUDED.n,
        value_sum = p.value_sum + EXCLUDED.value_sum,
        weight_sum = p.weight_sum + EXCLUDED.weight_sum,
        weighted = p.weighted + EXCLUDED.weighted,
        -- a mean weight that the chunk's weights equal is kept as it is, bit for bit
        w = CASE WHEN EXCLUDED.weighted = 0 THEN p.w
                 WHEN p.w IS NULL OR p.w = EXCLUDED.w THEN EXCLUDED.w
                 ELSE (p.weight_sum + EXCLUDED.weight_sum) / (p.weighted + EXCLUDED.weighted)
            END,
        w_before = p.w,
        n_before = p.n,
        top_n = CASE WHEN p.n + EXCLUDED.n >= ((SELECT floor_of FROM floors)
                                               ->> EXCLUDED.merchant)::int
                     THEN p.n + EXCLUDED.n END
    RETURNING merchant, customer, n, n_before, value_sum, w, w_before,
              first_chunk = %(chunk)s AS is_new
), merchant_rows AS (
    INSERT INTO txnpipe.merchants AS m
        (source_id, merchant, n, customers, weighted, females, males)
    -- the chunk's records of a pair: n - n_before (n_before is 0 on a new pair)
    SELECT %(sid)s, merchant, sum(n - n_before), count(*) FILTER (WHERE is_new),
           count(*) FILTER (WHERE w IS NOT NULL AND w_before IS NULL),
           count(*) FILTER (WHERE gender = 'F'), count(*) FILTER (WHERE gender = 'M')
    FROM (SELECT merchant, n, n_before, is_new, w, w_before,
                 CASE WHEN is_new THEN (SELECT c.gender FROM txnpipe.customers c
                                        WHERE c.source_id = %(sid)s
                                          AND c.customer = r.customer) END AS gender
          FROM pair_rows r OFFSET 0) r  -- OFFSET 0: each gender looked up once
    GROUP BY merchant
    ON CONFLICT (source_id, merchant) DO UPDATE SET
        n = m.n + EXCLUDED.n,
        customers = m.customers + EXCLUDED.customers,
        weighted = m.weighted + EXCLUDED.weighted,
        females = m.females + EXCLUDED.females,
        males = m.males + EXCLUDED.males,
        -- a chunk applied without evaluating PatId1 here moves keys the cursor never sees
        cursor_w = CASE WHEN %(inline)s THEN m.cursor_w END,
        cursor_customer = CASE WHEN %(inline)s THEN m.cursor_customer END,
        cursor_below = CASE WHEN %(inline)s THEN m.cursor_below END,
        count_cursor_n = CASE WHEN %(inline)s THEN m.count_cursor_n END,
        count_cursor_customer = CASE WHEN %(inline)s THEN m.count_cursor_customer END,
        count_cursor_above = CASE WHEN %(inline)s THEN m.count_cursor_above END,
        last_min_n = CASE WHEN %(inline)s THEN m.last_min_n END,
        last_tw = CASE WHEN %(inline)s THEN m.last_tw END
    RETURNING merchant, n, customers, weighted, females, males,
              cursor_w, cursor_customer, cursor_below, count_cursor_n, count_cursor_customer,
              count_cursor_above, count_floor, last_min_n, last_tw
)
SELECT 2, merchant, customer, NULL::int, NULL::int, NULL::int, NULL::float8, NULL::text,
       NULL::int, NULL::int, NULL::text, NULL::int, NULL::int, NULL::float8, NULL::text[],
       NULL::int[], NULL::float8[]
FROM pair_rows
WHERE n >= %(child_min)s AND value_sum / n < %(child_max)s - %(eps)s
UNION ALL
SELECT 3, merchant, '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL
FROM merchant_rows
WHERE females >= %(dei_min)s AND females < %(dei_ratio)s * males - %(eps)s
UNION ALL
-- PatId1's merchants: how many keys the chunk moved across each cursor, and the touched
-- pairs that may newly hold (at or above the floor). Each merchant's touched pairs are
-- gathered into arrays in one pass: joined row by row, the planner (blind to a CTE's
-- size) would compare every touched pair with every merchant.
SELECT 1, r.merchant, NULL, r.customers, r.weighted, r.count_floor,
       r.count_cursor_n, r.count_cursor_customer, r.count_cursor_above + u.count_moved,
       r.cursor_w, r.cursor_customer, r.cursor_below + u.weight_moved,
       r.last_min_n, r.last_tw, u.touched, u.counts, u.weights
FROM merchant_rows r
JOIN (SELECT merchant, array_agg(customer) AS customer, array_agg(n) AS n,
             array_agg(n_before) AS n_before, array_agg(w) AS w, array_agg(w_before) AS w_before
      FROM pair_rows GROUP BY merchant) v ON v.merchant = r.merchant
CROSS JOIN LATERAL (
    SELECT (count(*) FILTER (WHERE (p.n, p.customer) > (r.count_cursor_n, r.count_cursor_customer))
            - count(*) FILTER (WHERE (p.n_before, p.customer)
                                     > (r.count_cursor_n, r.count_cursor_customer)))::int
               AS count_moved,
           (count(*) FILTER (WHERE (p.w, p.customer) < (r.cursor_w, r.cursor_customer))
            - count(*) FILTER (WHERE (p.w_before, p.customer) < (r.cursor_w, r.cursor_customer)))::int
               AS weight_moved,
           array_agg(p.customer) FILTER (WHERE p.n >= r.count_floor AND p.w IS NOT NULL) AS touched,
           array_agg(p.n) FILTER (WHERE p.n >= r.count_floor AND p.w IS NOT NULL) AS counts,
           array_agg(p.w) FILTER (WHERE p.n >= r.count_floor AND p.w IS NOT NULL) AS weights
    FROM unnest(v.customer, v.n, v.n_before, v.w, v.w_before)
         AS p(customer, n, n_before, w, w_before)
) u
WHERE r.n > %(upgrade_min)s AND r.weighted > 0
"""


def _rank_branches(kind: str, column: str, descending: bool) -> list[str]:
    """The reads of one rank index (pairs_by_top_key from the top, pairs_by_mean_weight
    from the bottom): a page from its first key, from a cursor key on, or before it."""
    order, back = ("DESC", "ASC") if descending else ("ASC", "DESC")
    on, before = ("<=", ">") if descending else (">=", "<")
    cursor = "(r.key::int, r.customer)" if descending else "(r.key, r.customer)"
    keys = (f"SELECT {column} AS key, customer FROM txnpipe.pairs"
            f" WHERE source_id = %(sid)s AND merchant = r.merchant AND {column} IS NOT NULL")

    def branch(start: str, where: str, direction: str) -> str:
        return (f"SELECT r.i, k.* FROM reads r, LATERAL ({keys}{where}"
                f" ORDER BY {column} {direction}, customer {direction}"
                f" OFFSET r.skip LIMIT r.take) k WHERE r.kind = '{kind}' AND r.start = '{start}'")

    return [branch("first", "", order),
            branch("on", f" AND ({column}, customer) {on} {cursor}", order),
            branch("before", f" AND ({column}, customer) {before} {cursor}", back)]  # fmt: skip


# Every rank PatId1 needs for a chunk, read in one round trip: a page of keys per read.
_READ_RANKS = (
    "WITH reads AS (SELECT * FROM unnest(%(kind)s::text[], %(merchant)s::text[],"
    " %(start)s::text[], %(key)s::float8[], %(customer)s::text[], %(skip)s::int[],"
    " %(take)s::int[]) WITH ORDINALITY AS r(kind, merchant, start, key, customer, skip, take, i))\n"
    + "\nUNION ALL\n".join(_rank_branches("count", "top_n", descending=True)
                            + _rank_branches("weight", "w", descending=False))
)  # fmt: skip
# Counts from the top over all of a merchant's pairs, when the floor is missing or too high.
_ALL_COUNTS_AT = """
SELECT n, customer FROM txnpipe.pairs WHERE source_id = %s AND merchant = %s
ORDER BY n DESC, customer DESC OFFSET %s LIMIT %s
"""
_SET_COUNT_FLOOR = """
UPDATE txnpipe.pairs SET top_n = CASE WHEN n >= %(floor)s THEN n END
WHERE source_id = %(sid)s AND merchant = %(merchant)s
  AND top_n IS DISTINCT FROM CASE WHEN n >= %(floor)s THEN n END
"""
_RAISE_COUNT_FLOOR = """
UPDATE txnpipe.pairs SET top_n = NULL
WHERE source_id = %(sid)s AND merchant = %(merchant)s AND top_n < %(floor)s
"""

# PatId1 emits a key once, at the first point where it holds, so an evaluation only reads
# the pairs that may hold now and did not at the merchant's last evaluation: those the
# chunk touched (passed in with PatId2 and PatId3), those whose count lies between the
# new count threshold and a higher last one, those whose mean weight lies between the
# last weight threshold and a higher new one. Every pair at the thresholds is read only
# when the last ones are unknown. Each range is an index range scan.
_RECORD_DETECTIONS = """
WITH thresholds AS (
    SELECT * FROM unnest(%(upgrade_merchants)s::text[], %(min_n)s::int[], %(tw)s::float8[],
                         %(last_min_n)s::int[], %(last_tw)s::float8[], %(floor)s::int[],
                         %(cursor_w)s::float8[], %(cursor_customer)s::text[],
                         %(cursor_below)s::int[], %(count_cursor_n)s::int[],
                         %(count_cursor_customer)s::text[], %(count_cursor_above)s::int[])
        AS t(merchant, min_n, tw, last_min_n, last_tw, floor, cursor_w, cursor_customer,
             cursor_below, count_cursor_n, count_cursor_customer, count_cursor_above)
), kept AS (
    UPDATE txnpipe.merchants m
    SET cursor_w = t.cursor_w, cursor_customer = t.cursor_customer,
        cursor_below = t.cursor_below, count_cursor_n = t.count_cursor_n,
        count_cursor_customer = t.count_cursor_customer,
        count_cursor_above = t.count_cursor_above, count_floor = t.floor,
        last_min_n = t.min_n, last_tw = t.tw
    FROM thresholds t
    WHERE m.source_id = %(sid)s AND m.merchant = t.merchant
), candidates AS (
    SELECT 1 AS pattern, t.merchant, p.customer
    FROM thresholds t,
         LATERAL (SELECT customer, w FROM txnpipe.pairs
                  WHERE source_id = %(sid)s AND merchant = t.merchant AND top_n >= t.min_n
                    AND top_n < coalesce(t.last_min_n, 2147483647)
                  OFFSET 0) p  -- a range of pairs_by_top_key, whatever the planner guesses
    WHERE p.w <= t.tw + %(eps)s
  UNION
    SELECT 1, t.merchant, p.customer
    FROM thresholds t,
         LATERAL (SELECT customer, top_n FROM txnpipe.pairs
                  WHERE source_id = %(sid)s AND merchant = t.merchant
                    AND w > t.last_tw + %(eps)s AND w <= t.tw + %(eps)s
                  OFFSET 0) p  -- a range of pairs_by_mean_weight
    WHERE p.top_n >= t.min_n
  UNION
    SELECT * FROM unnest(%(pattern)s::smallint[], %(merchant)s::text[], %(customer)s::text[])
), inserted AS (
    INSERT INTO txnpipe.detections
        (source_id, seq, chunk, pattern, merchant, customer, y_start, detected_at)
    SELECT %(sid)s,
           %(base)s + row_number() OVER (ORDER BY pattern, merchant, customer) - 1,
           %(chunk)s, pattern, merchant, customer, %(y_start)s, clock_timestamp()
    FROM candidates c
    WHERE NOT EXISTS (SELECT 1 FROM txnpipe.detections d WHERE d.source_id = %(sid)s
                      AND d.pattern = c.pattern AND d.merchant = c.merchant
                      AND d.customer = c.customer)
    RETURNING 1
), counted AS (
    SELECT count(*) AS found FROM inserted
), done AS (
    DELETE FROM txnpipe.arrivals WHERE source_id = %(sid)s AND chunk = %(chunk)s
    RETURNING arrived_at
), logged AS (
    INSERT INTO txnpipe.chunk_log
        (source_id, chunk, arrived_at, y_start, applied_at, records, rejects, detections)
    SELECT %(sid)s, %(chunk)s, (SELECT min(arrived_at) FROM done), %(y_start)s,
           clock_timestamp(), %(records)s, %(rejects)s, found
    FROM counted
)
UPDATE txnpipe.detector_state
SET next_chunk = %(chunk)s + 1, detections = detections + (SELECT found FROM counted),
    upgrade_through = CASE WHEN %(inline)s THEN %(chunk)s ELSE upgrade_through END
WHERE source_id = %(sid)s
RETURNING (SELECT found FROM counted)
"""

# PatId1 from a batch run: each key at its first point in the run, unless already emitted,
# numbered after what is recorded so far; YStartTime is that of the point's chunk.
_MERGE_UPGRADES = """
WITH candidates AS (
    SELECT merchant, customer, min(chunk) AS chunk
    FROM unnest(%(chunk)s::int[], %(merchant)s::text[], %(customer)s::text[])
        AS c(chunk, merchant, customer)
    GROUP BY merchant, customer
), inserted AS (
    INSERT INTO txnpipe.detections
        (source_id, seq, chunk, pattern, merchant, customer, y_start, detected_at)
    SELECT %(sid)s,
           %(base)s + row_number() OVER (ORDER BY c.chunk, c.merchant, c.customer) - 1,
           c.chunk, 1, c.merchant, c.customer, l.y_start, clock_timestamp()
    FROM candidates c
    JOIN txnpipe.chunk_log l ON l.source_id = %(sid)s AND l.chunk = c.chunk
    WHERE NOT EXISTS (SELECT 1 FROM txnpipe.detections d WHERE d.source_id = %(sid)s
                      AND d.pattern = 1 AND d.merchant = c.merchant AND d.customer = c.customer)
    RETURNING 1
), counted AS (
    SELECT count(*) AS n FROM inserted
)
UPDATE txnpipe.detector_state
SET detections = detections + (SELECT n FROM counted), upgrade_through = %(last)s,
    upgrade_run = NULL, upgrade_first = NULL, upgrade_last = NULL
WHERE source_id = %(sid)s
RETURNING (SELECT n FROM counted)
"""


@dataclass
class PgApplySession:
    conn: psycopg.Connection
    sid: int
    progress: StreamProgress
    by_merchant: bool
    landed: set[int]
    staged: set[int]  # chunks whose history this detector's prefetch thread has written

    def arrivals(self) -> set[int]:
        return self.landed

    def apply(
        self,
        chunk: int,
        transactions: Sequence[Transaction],
        records: int,
        rejects: int,
        y_start: datetime,
        settings: Settings,
        upgrade_inline: bool = True,
    ) -> int:
        lo = chunk * settings.chunk_rows
        params = {"sid": self.sid, "chunk": chunk, "lo": lo, "hi": lo + settings.chunk_rows}
        if chunk in self.staged:
            self.staged.discard(chunk)
        else:
            _write_history(self.conn, self.sid, chunk, transactions, self.by_merchant)
        cur = self.conn.cursor()
        found = cur.execute(
            _AGGREGATE, {**params, **_rule_params(settings), "inline": upgrade_inline}
        ).fetchall()
        if not upgrade_inline:  # PatId1 is left to the batch engine
            found = [row for row in found if row[0] != 1]
        others = [(pattern, m, c) for pattern, m, c, *_ in found if pattern != 1]
        upgrades = self._evaluate([_Touched(*row) for row in found if row[0] == 1], settings)
        others += [(1, u.merchant, c) for u in upgrades for c in u.touched]
        row = cur.execute(
            _RECORD_DETECTIONS,
            {
                **params,
                "eps": EPS,
                "upgrade_merchants": [u.merchant for u in upgrades],
                "min_n": [u.min_n for u in upgrades],
                "tw": [u.tw for u in upgrades],
                "last_min_n": [u.last_min_n for u in upgrades],
                "last_tw": [u.last_tw for u in upgrades],
                "floor": [u.floor for u in upgrades],
                "cursor_w": [u.weight_cursor.key for u in upgrades],
                "cursor_customer": [u.weight_cursor.customer for u in upgrades],
                "cursor_below": [u.weight_cursor.rank for u in upgrades],
                "count_cursor_n": [u.count_cursor.key for u in upgrades],
                "count_cursor_customer": [u.count_cursor.customer for u in upgrades],
                "count_cursor_above": [u.count_cursor.rank for u in upgrades],
                "pattern": [r[0] for r in others],
                "merchant": [r[1] for r in others],
                "customer": [r[2] for r in others],
                "base": self.progress.detections,
                "y_start": y_start,
                "records": records,
                "rejects": rejects,
                "inline": upgrade_inline,
            },
        ).fetchone()
        return int(row[0]) if row else 0

    def _evaluate(self, rows: list[_Touched], settings: Settings) -> list[_Evaluation]:
        """PatId1's thresholds for the merchants the chunk touched, and which of the touched
        pairs at or above the count floor meet them.

        The two percentiles are read as ranks: of the counts from the top (p is near 1)
        through the pairs at or above the merchant's count floor, of the mean weights from
        the bottom; each from its cursor when there is one, all in one round trip.
        """
        count_p, weight_p = settings.upgrade_count_percentile, settings.upgrade_weight_percentile
        wanted: dict[tuple[str, str], tuple[int, int, _Cursor | None]] = {}
        for m in rows:
            lo, hi, _ = percentile_ranks(count_p, m.customers)
            if m.count_floor is not None:
                cursor = _Cursor.of(m.count_key, m.count_customer, m.count_above)
                wanted["count", m.merchant] = (m.customers - 1 - hi, m.customers - 1 - lo, cursor)
            lo, hi, _ = percentile_ranks(weight_p, m.weighted)
            cursor = _Cursor.of(m.weight_key, m.weight_customer, m.weight_below)
            wanted["weight", m.merchant] = (lo, hi, cursor)
        keys = self._read_ranks(wanted)
        # a cursor out of step with the rows (it ran off the end): read afresh
        again = {k: (first, last, None) for k, (first, last, cursor) in wanted.items()
                 if k not in keys and cursor is not None}  # fmt: skip
        keys |= self._read_ranks(again)
        return [self._thresholds(row, settings, keys) for row in rows]

    def _thresholds(
        self, m: _Touched, settings: Settings,
        keys: dict[tuple[str, str], list[tuple[float, str]]],
    ) -> _Evaluation:  # fmt: skip
        """One merchant's evaluation from its keys at the two ranks.

        Only pairs at or above the count floor are indexed by count. The floor is set at
        90% of the threshold and raised when the threshold has grown past it by a quarter;
        when the ranks fall below it (or there is none yet), every pair is read once and
        the floor rebuilt. The count cursor's key is at or above the threshold, so at or
        above the floor.
        """
        merchant, floor, last_min_n, last_tw = m.merchant, m.count_floor, m.last_min_n, m.last_tw
        lo, hi, fraction = percentile_ranks(settings.upgrade_count_percentile, m.customers)
        first = m.customers - 1 - hi
        top = keys.get(("count", merchant))
        rebuilt = top is None
        if top is None:
            top = self._keys(_ALL_COUNTS_AT, merchant, first, hi - lo + 1)
        (high, top_customer), (low, _) = top[0], top[-1]
        threshold = interpolate(float(low), float(high), fraction)
        if rebuilt or floor < 0.8 * threshold:
            floor = max(1, math.floor(0.9 * threshold))
            query = _SET_COUNT_FLOOR if rebuilt else _RAISE_COUNT_FLOOR
            self.conn.execute(query, {"sid": self.sid, "merchant": merchant, "floor": floor})
        if rebuilt:  # touched pairs under the old floor were not returned: read them all
            last_min_n = last_tw = None
        lo, hi, fraction = percentile_ranks(settings.upgrade_weight_percentile, m.weighted)
        bottom = keys["weight", merchant]
        (w_low, w_customer), (w_high, _) = bottom[0], bottom[-1]
        tw = interpolate(w_low, w_high, fraction)
        min_n = least_count_at_least(threshold)
        held = [c for c, n, w in zip(m.touched or (), m.counts or (), m.weights or ())
                if n >= min_n and at_most(w, tw)]  # fmt: skip
        return _Evaluation(merchant, min_n, tw, floor, _Cursor(int(high), top_customer, first),
                           _Cursor(w_low, w_customer, lo), last_min_n, last_tw, held)  # fmt: skip

    def _read_ranks(
        self, wanted: dict[tuple[str, str], tuple[int, int, _Cursor | None]]
    ) -> dict[tuple[str, str], list[tuple[float, str]]]:
        """The keys at ranks first..last of each (index, merchant) wanted, in rank order;
        those that came back short (a cursor out of step with the rows) are left out."""
        reads = [(kind, merchant, *page)
                 for (kind, merchant), (first, last, cursor) in wanted.items()
                 for page in _pages(first, last, cursor)]  # fmt: skip
        if not reads:
            return {}
        columns = ("kind", "merchant", "start", "key", "customer", "skip", "take")
        params = {name: [r[i] for r in reads] for i, name in enumerate(columns)}
        rows = self.conn.execute(_READ_RANKS, {"sid": self.sid, **params}).fetchall()
        found: dict[tuple[str, str], list[tuple[float, str]]] = {k: [] for k in wanted}
        for i, key, customer in rows:
            found[reads[i - 1][0], reads[i - 1][1]].append((key, customer))
        return {
            k: sorted(found[k], reverse=k[0] == "count")
            for k, (first, last, _) in wanted.items()
            if len(found[k]) == last - first + 1
        }

    def _keys(self, query: str, *args: object) -> list[tuple[Any, str]]:
        return [(v, str(c)) for v, c in self.conn.execute(query, (self.sid, *args)).fetchall()]


def _pages(
    first: int, last: int, cursor: _Cursor | None
) -> list[tuple[str, float | None, str | None, int, int]]:
    """The pages (start, key, customer, skip, take) of a rank index that hold the keys at
    ranks first..last (adjacent): from the index's first key, or stepping from the cursor
    (on or after it, or before it; one of each when the two ranks straddle it)."""
    take = last - first + 1
    if cursor is None:
        return [("first", None, None, first, take)]
    key, customer = float(cursor.key), cursor.customer
    if first >= cursor.rank:
        return [("on", key, customer, first - cursor.rank, take)]
    if last < cursor.rank:
        return [("before", key, customer, cursor.rank - 1 - last, take)]
    return [("before", key, customer, 0, 1), ("on", key, customer, 0, 1)]


@dataclass(frozen=True)
class _Progress:
    stream: StreamProgress
    layout: str | None
    run: UpgradeRun | None
    landed: set[int]


class _Touched(NamedTuple):
    """A PatId1 row of the aggregate: a touched merchant past the threshold, its cursors
    moved by this chunk, its last thresholds, and its touched pairs at or above the floor."""

    pattern: int
    merchant: str
    customer: None
    customers: int
    weighted: int
    count_floor: int | None
    count_key: int | None
    count_customer: str | None
    count_above: int | None
    weight_key: float | None
    weight_customer: str | None
    weight_below: int | None
    last_min_n: int | None
    last_tw: float | None
    touched: list[str] | None
    counts: list[int] | None
    weights: list[float] | None


@dataclass(frozen=True)
class _Evaluation:
    """A merchant's PatId1 evaluation: its thresholds, what is kept for the next one, and
    the touched pairs that meet them. No last thresholds: every pair must be read."""

    merchant: str
    min_n: int
    tw: float
    floor: int
    count_cursor: _Cursor
    weight_cursor: _Cursor
    last_min_n: int | None
    last_tw: float | None
    touched: list[str]


@dataclass(frozen=True)
class _Cursor:
    """A key (value, customer) of a rank index and its rank: how many keys come before it."""

    key: float
    customer: str
    rank: int

    @staticmethod
    def of(key: float | None, customer: str | None, rank: int | None) -> _Cursor | None:
        if key is None or customer is None or rank is None:
            return None
        return _Cursor(key, customer, rank)


def _has_record(conn: psycopg.Connection, sid: int, record: int) -> bool:
    """Whether a chunk is in the history already: it is written in one transaction, so
    its first accepted record stands for all of them."""
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM txnpipe.history WHERE source_id = %s AND record = %s)",
        (sid, record),
    ).fetchone()
    return bool(row and row[0])


def _rule_params(settings: Settings) -> dict[str, float | int]:
    return {
        "eps": EPS,
        "child_min": settings.child_min_txns,
        "child_max": float(settings.child_max_avg_value),
        "dei_min": settings.dei_min_female_customers,
        "dei_ratio": float(settings.dei_max_female_male_ratio),
        "upgrade_min": settings.upgrade_min_merchant_txns,
    }


@dataclass
class PgUpgradeSession:
    conn: psycopg.Connection
    sid: int
    progress: StreamProgress
    run: UpgradeRun | None

    def started(self, run: UpgradeRun) -> None:
        self.conn.execute(
            "UPDATE txnpipe.detector_state SET upgrade_run = %s, upgrade_first = %s,"
            " upgrade_last = %s WHERE source_id = %s",
            (run.run_id, run.first, run.last, self.sid),
        )
        self.run = run

    def merge(self, run: UpgradeRun, candidates: list[Candidate]) -> int:
        row = self.conn.execute(
            _MERGE_UPGRADES,
            {
                "sid": self.sid,
                "base": self.progress.detections,
                "last": run.last,
                "chunk": [c[0] for c in candidates],
                "merchant": [c[1] for c in candidates],
                "customer": [c[2] for c in candidates],
            },
        ).fetchone()
        found = int(row[0]) if row else 0
        self.progress = replace(self.progress, detections=self.progress.detections + found,
                                upgrade_through=run.last)  # fmt: skip
        self.run = None
        return found


@dataclass
class PgFlushSession:
    conn: psycopg.Connection
    sid: int
    progress: StreamProgress

    def rows(self, start: int, stop: int) -> list[Detection]:
        cur = self.conn.execute(
            "SELECT chunk, pattern, merchant, customer, y_start, detected_at"
            " FROM txnpipe.detections WHERE source_id = %s AND seq >= %s AND seq < %s"
            " ORDER BY seq",
            (self.sid, start, stop),
        )
        return [Detection(*row) for row in cur.fetchall()]

    def mark_written(self, files_written: int) -> None:
        self.conn.execute(
            "UPDATE txnpipe.detector_state SET files_written = %s WHERE source_id = %s",
            (files_written, self.sid),
        )


@dataclass
class PgDetectorState:
    conn: psycopg.Connection
    # A second connection for ``stage``, used by the prefetch thread only; without one the
    # history is written inside each chunk's apply.
    staging: Callable[[], psycopg.Connection] | None = None

    def __post_init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._layouts: dict[str, tuple[int, bool]] = {}
        self._staged: dict[str, set[int]] = {}

    def stage(self, source: str, chunk: int, transactions: Sequence[Transaction]) -> None:
        if self.staging is None or not transactions:
            return
        conn = self.staging()
        if source not in self._layouts:
            row = conn.execute(
                "SELECT d.source_id, d.weights_layout FROM txnpipe.detector_state d"
                " JOIN txnpipe.sources s USING (source_id) WHERE s.name = %s",
                (source,),
            ).fetchone()
            if row is None or row[1] is None:
                return  # no weights loaded yet: the apply writes the history itself
            self._layouts[source] = (int(row[0]), row[1] == "banksim")
        sid, by_merchant = self._layouts[source]
        with conn.transaction():
            _write_history(conn, sid, chunk, transactions, by_merchant)
        self._staged.setdefault(source, set()).add(chunk)

    def _sid(self, source: str) -> int:
        if source not in self._ids:
            self._ids[source] = source_id(self.conn, source)
        return self._ids[source]

    def ensure_source(self, source: str) -> bool:
        with self.conn.transaction():
            sid = self._sid(source)
            self.conn.execute(
                "INSERT INTO txnpipe.detector_state (source_id) VALUES (%s)"
                " ON CONFLICT (source_id) DO NOTHING",
                (sid,),
            )
            row = self.conn.execute(
                "SELECT weights_loaded FROM txnpipe.detector_state WHERE source_id = %s", (sid,)
            ).fetchone()
        return not (row and row[0])

    def load_weights(self, source: str, weights: WeightRows) -> None:
        """Stream the rows in, then keep each key's mean: memory stays flat however large."""
        with self.conn.transaction():
            sid = self._sid(source)
            row = self.conn.execute(
                "SELECT weights_loaded FROM txnpipe.detector_state WHERE source_id = %s"
                " FOR UPDATE",
                (sid,),
            ).fetchone()
            if row and row[0]:
                return
            self.conn.execute(
                "CREATE TEMP TABLE weights_in (customer text, merchant text, kind text,"
                " weight float8) ON COMMIT DROP"
            )
            with self.conn.cursor().copy(
                "COPY weights_in (customer, merchant, kind, weight) FROM STDIN"
            ) as copy:
                rows = iter(weights)
                while batch := list(itertools.islice(rows, 10_000)):  # memory stays flat
                    copy.write(_copy_text(batch))
            self.conn.execute(
                "INSERT INTO txnpipe.weights (source_id, customer, merchant, kind, weight)"
                " SELECT %s, customer, merchant, kind, avg(weight) FROM weights_in"
                " GROUP BY customer, merchant, kind",
                (sid,),
            )
            self.conn.execute(
                "UPDATE txnpipe.detector_state SET weights_loaded = true, weights_layout = %s,"
                " weights_rows = %s, weights_skipped = %s WHERE source_id = %s",
                (weights.layout, weights.rows, weights.skipped, sid),
            )

    def record_arrivals(self, source: str, chunks: Sequence[int]) -> None:
        """Rows are inserted in chunk order, whatever the event's order: concurrent
        detectors lock the same rows in one global order and never deadlock."""
        self.conn.execute(
            "INSERT INTO txnpipe.arrivals (source_id, chunk)"
            " SELECT %(sid)s, c.chunk FROM txnpipe.detector_state d,"
            " unnest(%(chunks)s::int[]) AS c(chunk)"
            " WHERE d.source_id = %(sid)s AND d.next_chunk <= c.chunk"
            " ORDER BY c.chunk"
            " ON CONFLICT (source_id, chunk) DO NOTHING",
            {"sid": self._sid(source), "chunks": sorted(set(chunks))},
        )

    def progress_of(self, source: str) -> StreamProgress | None:
        row = self.conn.execute(
            "SELECT d.next_chunk, d.total_chunks, d.detections, d.files_written,"
            " d.upgrade_through FROM txnpipe.detector_state d"
            " JOIN txnpipe.sources s USING (source_id) WHERE s.name = %s",
            (source,),
        ).fetchone()
        return StreamProgress(*row) if row is not None else None

    def live_sources(self, batch_rows: int) -> list[str]:
        """Sources whose stream has not ended, or has files still to write (for a sweep)."""
        rows = self.conn.execute(
            "SELECT s.name FROM txnpipe.detector_state d JOIN txnpipe.sources s USING (source_id)"
            " WHERE d.total_chunks IS NULL OR d.next_chunk < d.total_chunks"
            "    OR d.upgrade_through < d.total_chunks - 1 OR d.upgrade_run IS NOT NULL"
            "    OR d.files_written * %s < d.detections ORDER BY s.name",
            (batch_rows,),
        ).fetchall()
        return [name for (name,) in rows]

    def record_end(self, source: str, chunks: int, records: int) -> None:
        self.conn.execute(
            "UPDATE txnpipe.detector_state SET total_chunks = %s, total_records = %s"
            " WHERE source_id = %s",
            (chunks, records, self._sid(source)),
        )

    def _progress(self, sid: int) -> _Progress:
        row = self.conn.execute(_PROGRESS, (sid,)).fetchone()
        if row is None:
            raise LookupError(f"source {sid} has no detector state")
        run = UpgradeRun(row[6], row[7], row[8]) if row[6] is not None else None
        return _Progress(StreamProgress(*row[:5]), row[5], run, set(row[9]))

    @contextmanager
    def apply_session(self, source: str) -> Iterator[PgApplySession]:
        with self.conn.transaction():
            sid = self._sid(source)
            p = self._progress(sid)
            staged = self._staged.setdefault(source, set())
            yield PgApplySession(self.conn, sid, p.stream, p.layout == "banksim", p.landed, staged)

    @contextmanager
    def flush_session(self, source: str) -> Iterator[PgFlushSession]:
        with self.conn.transaction():
            sid = self._sid(source)
            yield PgFlushSession(self.conn, sid, self._progress(sid).stream)

    @contextmanager
    def upgrade_session(self, source: str) -> Iterator[PgUpgradeSession]:
        with self.conn.transaction():
            sid = self._sid(source)
            p = self._progress(sid)
            yield PgUpgradeSession(self.conn, sid, p.stream, p.run)

    def sources_with_runs(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT s.name FROM txnpipe.detector_state d JOIN txnpipe.sources s USING (source_id)"
            " WHERE d.upgrade_run IS NOT NULL ORDER BY s.name"
        ).fetchall()
        return [name for (name,) in rows]
