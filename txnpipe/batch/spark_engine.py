"""PatId1 candidates and whole-stream detections on Spark (the Glue job, or local PySpark).

Same semantics as ``duckdb_engine``, in the DataFrame API. Spark has no ASOF join, so a
pair's running state is expanded to the points it is valid for: the state written at chunk
c_i holds until the pair's next touched chunk c_{i+1} - 1. Each state is exploded over
[max(c_i, first point of its merchant), min(c_{i+1} - 1, last)] and equi-joined with the
merchant's points on (merchant, k); the expansion is bounded by customers x points, the size
of the answer's input anyway, and no range join is needed.

``percentile`` is Spark's exact percentile (never the approximate one): linear
interpolation between the closest ranks, like PostgreSQL's ``percentile_cont``. Floating
point differences between engines stay far inside ε (SPEC 4.2).
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce

from pyspark import RDD
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from txnpipe.batch import SettingsLike, as_settings
from txnpipe.batch.frames import chunk_transactions
from txnpipe.core.detections import Detection, first_detections, ordered
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.rules import CATALOGUE, EPS, Catalogue, PercentileRule, ThresholdRule
from txnpipe.core.rules.expressions import Operator, Quantity, Setting, render
from txnpipe.core.settings import Settings
from txnpipe.core.weights import Weights

SCHEMA = T.StructType(
    [
        T.StructField("chunk", T.IntegerType(), False),
        T.StructField("record", T.LongType(), False),
        T.StructField("customer", T.StringType(), False),
        T.StructField("merchant", T.StringType(), False),
        T.StructField("value", T.DoubleType(), False),
        T.StructField("gender", T.StringType(), False),
        T.StructField("weight", T.DoubleType(), True),
    ]
)
_ALL_BEFORE = (Window.unboundedPreceding, Window.currentRow)
_CHUNK_FILE = re.compile(r"chunk_(\d{6,})\.csv$")


def _parse(weights: Weights, chunk_rows: int, item: tuple[int, bytes]) -> list[tuple]:
    return chunk_transactions(item[0], bytes(item[1]), weights, chunk_rows)


def transactions_from_rdd(
    spark: SparkSession, chunks: RDD, weights: Weights, chunk_rows: int
) -> DataFrame:
    """An RDD of (chunk index, chunk file bytes), parsed in the executors by the core parser.

    The weights travel as one broadcast, so each executor looks weights up exactly as the
    detector does (``Weights.key_for``).
    """
    shared = spark.sparkContext.broadcast(weights)
    rows = chunks.flatMap(lambda item: _parse(shared.value, chunk_rows, item))
    # The core parser already yields exactly SCHEMA's types; per-row checks would double
    # the cost of building the frame.
    return spark.createDataFrame(rows, SCHEMA, verifySchema=False)


def local_session(master: str = "local[*]") -> SparkSession:
    """The active session, or a local one whose Python workers use this interpreter.

    Without ``PYSPARK_PYTHON``, workers start ``python3`` from PATH, which may not see
    txnpipe; the Glue job builds its own session and never calls this.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    session = (
        SparkSession.builder.master(master)
        .appName("txnpipe-batch")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def _chunk_index(path: str) -> int:
    m = _CHUNK_FILE.search(path)
    return int(m.group(1)) if m else -1


def read_chunk_files(spark: SparkSession, pattern: str, last: int) -> RDD:
    """RDD of (chunk index, bytes) for the files matching ``pattern`` with index <= last.

    One listing instead of a GET per expected key; chunks written after ``last`` are left
    out, and a gap in 0..last is an error rather than silently different statistics.
    """
    sc = spark.sparkContext
    chunks = (
        sc.binaryFiles(pattern, minPartitions=max(1, sc.defaultParallelism))
        .map(lambda item: (_chunk_index(item[0]), item[1]))
        .filter(lambda item: 0 <= item[0] <= last)
        .cache()
    )
    absent = sorted(set(range(last + 1)) - set(chunks.keys().collect()))
    if absent:
        shown = ", ".join(str(k) for k in absent[:10])
        raise TxnpipeError(f"{len(absent)} chunk file(s) of 0..{last} missing: {shown}")
    return chunks


def transactions_df(
    spark: SparkSession,
    chunks: Iterable[tuple[int, bytes]],
    weights: Weights,
    chunk_rows: int,
    partitions: int | None = None,
) -> DataFrame:
    """Chunk files already in the driver (backfill, tests) as a transactions DataFrame."""
    items = list(chunks)
    slices = partitions or max(1, min(len(items), spark.sparkContext.defaultParallelism * 4))
    return transactions_from_rdd(
        spark, spark.sparkContext.parallelize(items, slices), weights, chunk_rows
    )


def _pair_states(transactions: DataFrame) -> DataFrame:
    """Running (n, weighted count, weight sum, value sum) per pair at each chunk touching it."""
    delta = transactions.groupBy("merchant", "customer", "chunk").agg(
        F.count(F.lit(1)).alias("dn"),
        F.count("weight").alias("dwc"),
        F.coalesce(F.sum("weight"), F.lit(0.0)).alias("dws"),
        F.sum("value").alias("dvs"),
    )
    by_pair = Window.partitionBy("merchant", "customer").orderBy("chunk")
    running = by_pair.rowsBetween(*_ALL_BEFORE)
    return delta.select(  # core.rules.aggregates.PairState, at each chunk touching the pair
        "merchant", "customer", "chunk", "dn",
        F.sum("dn").over(running).alias("n"),
        F.sum("dwc").over(running).alias("weighted_txns"),
        F.sum("dws").over(running).alias("weight_sum"),
        F.sum("dvs").over(running).alias("value_sum"),
        F.lead("chunk").over(by_pair).alias("next_chunk"),
    )  # fmt: skip


def _points(states: DataFrame, min_merchant_txns: int, first: int) -> DataFrame:
    """(merchant, k): chunk k touched m, k >= first, and N(m) at k exceeds the minimum."""
    per_chunk = states.groupBy("merchant", "chunk").agg(F.sum("dn").alias("dn"))
    running = Window.partitionBy("merchant").orderBy("chunk").rowsBetween(*_ALL_BEFORE)
    total = per_chunk.select("merchant", "chunk", F.sum("dn").over(running).alias("total"))
    return total.where((F.col("total") > min_merchant_txns) & (F.col("chunk") >= first)).select(
        "merchant", F.col("chunk").alias("k")
    )


def _percentile(column: str, p: float) -> Column:
    return F.expr(f"percentile({column}, CAST({float(p)!r} AS DOUBLE))")


def _upgrade(states: DataFrame, rule: PercentileRule, settings: SettingsLike, first: int,
             last: int) -> DataFrame:  # fmt: skip
    minimum, count_p, weight_p = rule.values(as_settings(settings))
    points = _points(states, minimum, first)
    start = points.groupBy("merchant").agg(F.min("k").alias("kmin"))
    lo = F.greatest(F.col("chunk"), F.col("kmin"))
    hi = F.coalesce(F.col("next_chunk") - 1, F.lit(last))
    valid = (
        states.join(start, "merchant")
        .select(
            "merchant", "customer", lo.alias("lo"), F.least(hi, F.lit(last)).alias("hi"),
            F.col("n").cast("double").alias("n"),
            F.when(F.col("weighted_txns") > 0,
                   F.col("weight_sum") / F.col("weighted_txns")).alias("w"),
        )
        .where(F.col("lo") <= F.col("hi"))  # sequence(lo, hi) would count down otherwise
    )  # fmt: skip
    at_point = valid.select(
        "merchant", "customer", F.explode(F.sequence("lo", "hi")).alias("k"), "n", "w"
    ).join(points, ["merchant", "k"])
    thresholds = at_point.groupBy("merchant", "k").agg(
        _percentile("n", count_p).alias("tn"),
        _percentile("w", weight_p).alias("tw"),
    )
    return (
        at_point.join(thresholds, ["merchant", "k"])
        .where(
            F.col("w").isNotNull()
            & F.col("tw").isNotNull()
            & (F.col("n") >= F.col("tn") - EPS)
            & (F.col("w") <= F.col("tw") + EPS)
        )
        .select(F.col("k").cast("int").alias("chunk"), "merchant", "customer")
    )


def upgrade_candidates(
    spark: SparkSession, transactions_df: DataFrame, settings: SettingsLike, first: int, last: int,
    catalogue: Catalogue = CATALOGUE,
) -> DataFrame:
    """DataFrame[chunk, merchant, customer]: PatId1 holds at point chunk, first <= chunk <= last.

    ``transactions_df`` must hold chunks 0..last (stats are cumulative); later chunks are
    ignored. Only points whose chunk touched the merchant are listed: an untouched merchant's
    state is the previous point's, so it cannot have a first detection there.
    """
    if first < 0 or last < first:
        raise ValueError(f"bad chunk range {first}..{last}")
    states = _pair_states(transactions_df.where(F.col("chunk") <= last))
    rule = catalogue.percentile_rule
    if rule is None:
        raise ValueError("the catalogue has no percentile rule to compute")
    return _upgrade(states, rule, settings, first, last)


@dataclass(frozen=True)
class _SparkDialect:
    """Conditions as Column expressions over state columns named as in ``aggregates``."""

    columns: dict[str, Column]
    settings: Settings

    def quantity(self, quantity: Quantity) -> Column:
        return self.columns[quantity.name]

    def setting(self, setting: Setting) -> Column:
        return F.lit(setting.value(self.settings))

    def number(self, value: int | float) -> Column:
        return F.lit(value)

    def product(self, left: Column, right: Column) -> Column:
        return left * right

    def shifted(self, term: Column, by: float) -> Column:
        return term + F.lit(by)

    def compare(self, left: Column, op: Operator, right: Column) -> Column:
        return {"<": left < right, "<=": left <= right, ">=": left >= right,
                ">": left > right}[op]  # fmt: skip

    def conjunction(self, terms: list[Column]) -> Column:
        return reduce(lambda a, b: a & b, terms)


def _pair_columns() -> dict[str, Column]:
    """``aggregates.PAIR_SQL`` as Columns (built when a session is active)."""
    return {"n": F.col("n"), "mean_value": F.col("value_sum") / F.col("n"),
            "mean_weight": F.when(F.col("weighted_txns") > 0,
                                  F.col("weight_sum") / F.col("weighted_txns"))}  # fmt: skip


def _merchant_columns() -> dict[str, Column]:
    return {"merchant_txns": F.col("n"), "females": F.col("females"), "males": F.col("males")}


def _merchant_states(transactions: DataFrame, states: DataFrame) -> DataFrame:
    """Each merchant's N(m), F(m), M(m) at every chunk touching it (a customer's gender is
    that of its first accepted record, counted from its first visit)."""
    gender = transactions.groupBy("customer").agg(
        F.expr("min_by(gender, record)").alias("gender")
    )
    since = transactions.groupBy("merchant", "customer").agg(F.min("chunk").alias("chunk"))
    newcomers = (
        since.join(gender, "customer")
        .groupBy("merchant", "chunk")
        .agg(
            F.sum(F.when(F.col("gender") == "F", 1).otherwise(0)).alias("df"),
            F.sum(F.when(F.col("gender") == "M", 1).otherwise(0)).alias("dm"),
        )
    )
    deltas = (
        states.groupBy("merchant", "chunk").agg(F.sum("dn").alias("dn"))
        .join(newcomers, ["merchant", "chunk"], "left")
        .fillna(0, ["df", "dm"])
    )  # fmt: skip
    running = Window.partitionBy("merchant").orderBy("chunk").rowsBetween(*_ALL_BEFORE)
    return deltas.select(
        "merchant", "chunk", F.sum("dn").over(running).alias("n"),
        F.sum("df").over(running).alias("females"), F.sum("dm").over(running).alias("males"),
    )  # fmt: skip


def _first_points(rows: DataFrame, rule: ThresholdRule, columns: dict[str, Column],
                  settings: Settings, keys: list[str]) -> DataFrame:  # fmt: skip
    holds = render(rule.condition, _SparkDialect(columns, settings))
    customer = F.col("customer") if "customer" in keys else F.lit("")
    return (
        rows.where(holds)
        .groupBy(*keys)
        .agg(F.min("chunk").alias("chunk"))
        .select("chunk", F.lit(rule.pattern).alias("pattern"), "merchant",
                customer.alias("customer"))
    )  # fmt: skip


def detections(
    spark: SparkSession, transactions_df: DataFrame, settings: SettingsLike,
    catalogue: Catalogue = CATALOGUE,
) -> list[Detection]:
    """Every detection of a finished stream at its first point, in SPEC 4.3 order."""
    s = as_settings(settings)
    # Parsing runs in Python workers: keep the parsed rows for the three patterns' passes.
    was_cached = transactions_df.is_cached
    transactions = transactions_df.cache()
    states = _pair_states(transactions).cache()
    try:
        last = transactions.agg(F.max("chunk")).first()[0]
        if last is None:
            return []
        rule = catalogue.percentile_rule
        upgrade = [] if rule is None else _upgrade(states, rule, s, 0, int(last)).collect()
        merchants = _merchant_states(transactions, states)
        found = [_first_points(states, r, _pair_columns(), s, ["merchant", "customer"])
                 for r in catalogue.pair_rules]
        found += [_first_points(merchants, r, _merchant_columns(), s, ["merchant"])
                  for r in catalogue.merchant_rules]  # fmt: skip
        others = reduce(DataFrame.unionByName, found).collect() if found else []
    finally:
        states.unpersist()
        if not was_cached:
            transactions.unpersist()
    rows = first_detections(((r.chunk, r.merchant, r.customer) for r in upgrade),
                            rule.pattern if rule is not None else 1)  # fmt: skip
    rows += [Detection(r.chunk, r.pattern, r.merchant, r.customer) for r in others]
    return ordered(rows)

