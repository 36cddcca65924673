"""PatId1 on Spark across runs: each merchant's walk state kept between streaming runs.

The detector hands PatId1's new points to a batch run again and again as chunks land (the
Glue job, SPEC 4.4). A run that started from chunk 0 every time would re-read and re-walk
the whole history. Instead each run ends by writing every merchant's walk state (its pairs'
sums, which customers it emitted, N(m) and its last thresholds: what
``core.rules.percentile_walk.MerchantWalk.resume`` starts from) as one Parquet table; the
next run reads that state and only the chunks after it. State and new deltas meet in one
``cogroup`` by merchant, so a merchant's state and its deltas are walked in one task (a
grouped operation, which Spark cannot split across tasks; see ``spark_engine._upgrade``).

One table holds both kinds of row: a pair (``customer`` set) and the merchant's own row
(``customer`` null, ``n`` its N(m)). The walk's output adds the first points found
(``kind`` "point"), split off by ``points`` and ``state``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from txnpipe.batch import SettingsLike, as_settings
from txnpipe.core.rules import CATALOGUE, Catalogue
from txnpipe.core.rules.percentile_walk import MerchantWalk, walk_chunks

STATE_SCHEMA = T.StructType([
    T.StructField("merchant", T.StringType(), False),
    T.StructField("customer", T.StringType(), True),  # null: the merchant's own row
    T.StructField("n", T.LongType(), False),  # n(c,m), or N(m) on the merchant's row
    T.StructField("wc", T.LongType(), False),  # weighted records
    T.StructField("ws", T.DoubleType(), False),  # their weight sum
    T.StructField("detected", T.BooleanType(), False),  # emitted by PatId1 already
    T.StructField("last_min_n", T.IntegerType(), True),  # the merchant's last thresholds
    T.StructField("last_tw", T.DoubleType(), True),
])  # fmt: skip
_WALKED = T.StructType([T.StructField("kind", T.StringType(), False),
                        T.StructField("chunk", T.IntegerType(), True), *STATE_SCHEMA.fields])  # fmt: skip
_STATE_COLUMNS = [f.name for f in STATE_SCHEMA.fields]


def empty_state(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], STATE_SCHEMA)


def _resumed_walk(minimum: int, count_p: float, weight_p: float) -> Callable[[Any, Any], Any]:
    """One merchant: resume its walk from its state rows, walk its deltas in chunk order,
    return the first points and the state after them."""

    def walk(deltas: Any, state: Any) -> Any:
        import pandas as pd

        merchant = str((deltas if len(deltas) else state)["merchant"].iloc[0])
        own = state[state["customer"].isna()]
        pairs = state[state["customer"].notna()]
        walker = MerchantWalk(minimum, count_p, weight_p)
        last = None
        if len(own) and pd.notna(own["last_min_n"].iloc[0]) and pd.notna(own["last_tw"].iloc[0]):
            last = (int(own["last_min_n"].iloc[0]), float(own["last_tw"].iloc[0]))
        walker.resume(
            int(own["n"].iloc[0]) if len(own) else 0,
            zip(pairs["customer"].tolist(), pairs["n"].tolist(), pairs["wc"].tolist(),
                pairs["ws"].tolist()),
            pairs.loc[pairs["detected"], "customer"].tolist(),
            last,
        )  # fmt: skip
        ordered = deltas.sort_values("chunk", kind="stable")
        rows = zip(*(ordered[c].tolist() for c in ("chunk", "customer", "dn", "dwc", "dws")))
        found = list(walk_chunks(walker, rows))
        kept = list(walker.pairs())
        min_n, tw = walker.last if walker.last is not None else (None, None)
        return pd.DataFrame({
            "kind": ["point"] * len(found) + ["pair"] * len(kept) + ["merchant"],
            "chunk": pd.Series([k for k, _ in found] + [None] * (len(kept) + 1), dtype="Int32"),
            "merchant": merchant,
            "customer": [c for _, c in found] + [p[0] for p in kept] + [None],
            "n": [0] * len(found) + [p[1] for p in kept] + [walker.transactions],
            "wc": [0] * len(found) + [p[2] for p in kept] + [0],
            "ws": [0.0] * len(found) + [p[3] for p in kept] + [0.0],
            "detected": [True] * len(found) + [p[4] for p in kept] + [False],
            "last_min_n": pd.Series([None] * (len(found) + len(kept)) + [min_n], dtype="Int32"),
            "last_tw": pd.Series([None] * (len(found) + len(kept)) + [tw], dtype="Float64"),
        })  # fmt: skip

    return walk


def walk_resumed(transactions: DataFrame, state: DataFrame, settings: SettingsLike,
                 catalogue: Catalogue = CATALOGUE) -> DataFrame:  # fmt: skip
    """Every merchant's walk resumed from ``state`` through ``transactions`` (the chunks
    after the state, in any order): first points and the state after them, by ``kind``."""
    rule = catalogue.percentile_rule
    if rule is None:
        raise ValueError("the catalogue has no percentile rule to compute")
    minimum, count_p, weight_p = rule.values(as_settings(settings))
    deltas = transactions.groupBy("merchant", "customer", "chunk").agg(
        F.count(F.lit(1)).alias("dn"), F.count("weight").alias("dwc"),
        F.coalesce(F.sum("weight"), F.lit(0.0)).alias("dws"),
    )  # fmt: skip
    return (deltas.groupBy("merchant").cogroup(state.groupBy("merchant"))
            .applyInPandas(_resumed_walk(minimum, count_p, weight_p), _WALKED))  # fmt: skip


def points(walked: DataFrame, first: int) -> DataFrame:
    """DataFrame[chunk, merchant, customer]: the first points from chunk ``first`` on."""
    found = walked.where((F.col("kind") == "point") & (F.col("chunk") >= first))
    return found.select("chunk", "merchant", "customer")


def state(walked: DataFrame) -> DataFrame:
    return walked.where(F.col("kind") != "point").select(*_STATE_COLUMNS)
