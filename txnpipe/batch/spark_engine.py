"""PatId1 candidates and whole-stream detections on Spark (the Glue job, or local PySpark).

Same semantics and plan as ``duckdb_engine``, in the DataFrame API. The threshold rules are
first crossings of running sums (window functions, one pass). PatId1 is one shuffle by
merchant: each merchant's deltas go through the merchant walk (``core.rules.percentile_walk``)
in ``applyInPandas``, so no pair state is expanded over points, a worker holds one
merchant's deltas and pairs at a time, and only first points leave the executors.
The walk's percentile arithmetic is ``core.rules.percentiles``, as every engine's.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import reduce
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark import RDD
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from txnpipe.batch import SettingsLike, as_settings
from txnpipe.batch.frames import keyed_transactions
from txnpipe.core.detections import Detection, ordered
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.layouts import importance_layout
from txnpipe.core.rules import CATALOGUE, Catalogue, PercentileRule, ThresholdRule
from txnpipe.core.rules.expressions import Operator, Quantity, Setting, render
from txnpipe.core.rules.percentile_walk import merchant_first_points
from txnpipe.core.settings import Settings
from txnpipe.core.weights import keyed_by_merchant, weight_rows

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


_KEYED = T.StructType(
    [*SCHEMA.fields[:-1], T.StructField("kind", T.StringType(), False),
     T.StructField("weight_merchant", T.StringType(), False)]
)  # fmt: skip
_WEIGHT_ROWS = T.StructType(
    [T.StructField("customer", T.StringType(), False),
     T.StructField("weight_merchant", T.StringType(), False),
     T.StructField("kind", T.StringType(), False),
     T.StructField("weight", T.DoubleType(), False),
     T.StructField("row", T.LongType(), False)]
)  # fmt: skip


@dataclass(frozen=True)
class Importance:
    """The importance file as the engine reads it: its bytes as an RDD of one element, parsed
    in an executor (never collected to the driver nor broadcast whole), and whether its keys
    name the merchant (from its header)."""

    data: RDD
    keyed_by_merchant: bool

    @classmethod
    def of_bytes(cls, spark: SparkSession, data: bytes) -> Importance:
        """A file already in the driver (backfill, the local engine, tests)."""
        layout = weight_rows(data).layout
        return cls(spark.sparkContext.parallelize([data], 1), keyed_by_merchant(layout))

    @classmethod
    def at(cls, spark: SparkSession, uri: str) -> Importance:
        """A file in storage (the Glue job): only its first line is read here."""
        sc = spark.sparkContext
        try:
            header = sc.textFile(uri).first()
        except (Py4JJavaError, ValueError) as exc:  # a missing path; an empty file
            raise TxnpipeError(f"importance file {uri} not found or empty: "
                               f"{str(exc).splitlines()[0]}") from None  # fmt: skip
        layout = importance_layout(header.encode("utf-8"))
        return cls(sc.binaryFiles(uri).values(), keyed_by_merchant(layout.name))


def weights_frame(spark: SparkSession, importance: Importance) -> DataFrame:
    """Each weight key with its mean weight, as a table to join (SPEC 2.2's mean of duplicate
    keys). The rows of a key are summed in file order, from 0.0, then divided by their
    number: the same floating-point operations as ``parse_weights``, so every engine gives a
    transaction the same weight, bit for bit."""
    rows = importance.data.flatMap(
        lambda data: ((c, m, k, w, i) for i, (c, m, k, w) in enumerate(weight_rows(bytes(data))))
    )
    frame = spark.createDataFrame(rows, _WEIGHT_ROWS, verifySchema=False)
    in_order = F.array_sort(F.collect_list(F.struct("row", "weight")))
    summed = F.aggregate("weights", F.lit(0.0), lambda total, x: total + x["weight"])
    mean = (summed / F.size("weights")).alias("weight")
    keys = ("customer", "weight_merchant", "kind")
    return frame.groupBy(*keys).agg(in_order.alias("weights")).select(*keys, mean)


def transactions_from_rdd(
    spark: SparkSession, chunks: RDD, importance: Importance, chunk_rows: int
) -> DataFrame:
    """An RDD of (chunk index, chunk file bytes), parsed in the executors by the core parser,
    each record given its weight by a join with the weights table (None when its key is
    absent, as ``Weights.key_for`` finds it)."""
    by_merchant = importance.keyed_by_merchant
    rows = chunks.flatMap(
        lambda item: keyed_transactions(item[0], bytes(item[1]), by_merchant, chunk_rows)
    )
    # The core parser already yields exactly _KEYED's types; per-row checks would double
    # the cost of building the frame.
    keyed = spark.createDataFrame(rows, _KEYED, verifySchema=False)
    weighed = keyed.join(weights_frame(spark, importance),
                         on=["customer", "weight_merchant", "kind"], how="left")  # fmt: skip
    return weighed.select(*SCHEMA.fieldNames())


def local_session(master: str = "local[*]", driver_memory: str | None = None) -> SparkSession:
    """The active session, or a local one whose Python workers use this interpreter.

    Without ``PYSPARK_PYTHON``, workers start ``python3`` from PATH, which may not see
    txnpipe; the Glue job builds its own session and never calls this. ``driver_memory``
    (the JVM's heap, which in local mode is every executor's too) applies only to a session
    started here: a running JVM keeps its heap.
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
        .config("spark.driver.memory", driver_memory or "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def _chunk_index(path: str) -> int:
    m = _CHUNK_FILE.search(path)
    return int(m.group(1)) if m else -1


def read_chunk_files(spark: SparkSession, pattern: str, first: int, last: int) -> RDD:
    """RDD of (chunk index, bytes) of the files matching ``pattern`` with index first..last.

    One listing (names only) instead of a GET per expected key, then only those files are
    read: a streaming run that resumes from its state reads what is new, not the history.
    Chunks written after ``last`` are left out, and a gap is an error rather than silently
    different statistics. (Source names hold no comma, so the paths join into one list.)
    """
    sc = spark.sparkContext
    hadoop = sc._jvm.org.apache.hadoop.fs.Path(pattern)  # type: ignore[attr-defined]
    statuses = hadoop.getFileSystem(sc._jsc.hadoopConfiguration()).globStatus(hadoop) or []  # type: ignore[attr-defined]
    paths = {k: str(st.getPath().toString()) for st in statuses
             if first <= (k := _chunk_index(str(st.getPath().getName()))) <= last}  # fmt: skip
    absent = [k for k in range(first, last + 1) if k not in paths]
    if absent:
        shown = ", ".join(str(k) for k in absent[:10])
        raise TxnpipeError(f"{len(absent)} chunk file(s) of {first}..{last} missing: {shown}")
    listed = ",".join(paths[k] for k in range(first, last + 1))
    return sc.binaryFiles(listed, minPartitions=max(1, sc.defaultParallelism)).map(
        lambda item: (_chunk_index(item[0]), item[1])
    )


def transactions_df(
    spark: SparkSession,
    chunks: Iterable[tuple[int, bytes]],
    importance: bytes,
    chunk_rows: int,
    partitions: int | None = None,
) -> DataFrame:
    """Chunk files and an importance file already in the driver (the local engine, tests) as
    a transactions DataFrame."""
    items = list(chunks)
    slices = partitions or max(1, min(len(items), spark.sparkContext.defaultParallelism * 4))
    return transactions_from_rdd(spark, spark.sparkContext.parallelize(items, slices),
                                 Importance.of_bytes(spark, importance), chunk_rows)  # fmt: skip


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
        "merchant", "customer", "chunk", "dn", "dwc", "dws",
        F.sum("dn").over(running).alias("n"),
        F.sum("dwc").over(running).alias("weighted_txns"),
        F.sum("dws").over(running).alias("weight_sum"),
        F.sum("dvs").over(running).alias("value_sum"),
    )  # fmt: skip


_UPGRADE_SCHEMA = T.StructType(
    [
        T.StructField("chunk", T.IntegerType(), False),
        T.StructField("merchant", T.StringType(), False),
        T.StructField("customer", T.StringType(), False),
    ]
)


def _walk(minimum: int, count_p: float, weight_p: float) -> Callable[[Any], Any]:
    """The merchant walk over one merchant's deltas (a pandas frame: what ``applyInPandas``
    hands a group), in chunk order."""

    def walk(deltas: Any) -> Any:
        import pandas as pd

        ordered = deltas.sort_values("chunk", kind="stable")
        rows = zip(*(ordered[c].tolist() for c in ("chunk", "customer", "dn", "dwc", "dws")))
        merchant = str(ordered["merchant"].iloc[0]) if len(ordered) else ""
        found = list(merchant_first_points(rows, minimum, count_p, weight_p))
        return pd.DataFrame({"chunk": pd.Series([k for k, _ in found], dtype="int32"),
                             "merchant": merchant,
                             "customer": pd.Series([c for _, c in found], dtype="object")})  # fmt: skip

    return walk


def _upgrade(states: DataFrame, rule: PercentileRule, settings: SettingsLike, first: int,
             last: int) -> DataFrame:  # fmt: skip
    """PatId1's first points in first..last: the deltas grouped by merchant, each group
    walked (``core.rules.percentile_walk``) in chunk order.

    A grouped operation, not a map over partitions: only a grouping makes Spark keep each
    merchant in one task. A map declares no distribution, so a partitioning that happens to
    hold can be undone: adaptive execution turned the join below into a broadcast join and
    read its shuffle locally, which put part of every merchant in each task."""
    del last  # ``states`` holds chunks 0..last only
    minimum, count_p, weight_p = rule.values(as_settings(settings))
    past = (states.groupBy("merchant").agg(F.sum("dn").alias("total"))
            .where(F.col("total") > minimum).select("merchant"))  # fmt: skip
    deltas = states.join(past, "merchant").select(
        "merchant", "chunk", "customer", "dn", "dwc", "dws"
    )
    walked = deltas.groupBy("merchant").applyInPandas(
        _walk(minimum, count_p, weight_p), _UPGRADE_SCHEMA
    )
    return walked.where(F.col("chunk") >= first)


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

    def number(self, value: float) -> Column:
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
    rows = [Detection(r.chunk, rule.pattern, r.merchant, r.customer) for r in upgrade]
    rows += [Detection(r.chunk, r.pattern, r.merchant, r.customer) for r in others]
    return ordered(rows)

