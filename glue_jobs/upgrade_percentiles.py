"""Glue 5.0 (Spark 3.5) job: PatId1 (UPGRADE) candidates for evaluation points first..last.

The detector hands PatId1's percentiles to this job (SPEC 4.4). It reads the chunk files
``chunks/<source>/chunk_%06d.csv``, parses them in the executors with txnpipe's own parser
(shipped to Glue with ``--extra-py-files`` as a zip, so rejects, cleaning and weights match
the detector's), walks each merchant (``txnpipe.batch.upgrade_state``), and writes the rows
(chunk, merchant, customer) at which PatId1 first holds, as Parquet, to
``s3://<bucket>/<output_prefix><source>/upgrade_<first:06d>_<last:06d>/``.

Stats are cumulative from chunk 0, but a run does not re-read them: it ends by writing every
merchant's walk state after ``last`` (``<output_prefix><source>/state/<tag>/through_<last>/``),
and the next run, for last + 1.., resumes from it and reads only its own chunks. Without that
state (the first run, or a state under other settings) it reads chunks 0..last.

Without ``awsglue`` (local PySpark) it runs on a plain ``SparkSession`` and reads the
arguments with argparse; ``--txnpipe_base_uri`` (e.g. ``file:///tmp/run/``) then replaces
``s3://<bucket>/`` so the job can run against a ``txnpipe run --out`` folder. Importing this
module has no side effects; ``main()`` runs the job.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from txnpipe.batch.spark_engine import (
    Importance,
    read_chunk_files,
    transactions_from_rdd,
    upgrade_candidates,
)
from txnpipe.batch.upgrade_state import STATE_SCHEMA, empty_state, points, walk_resumed
from txnpipe.batch.upgrade_state import state as kept_state
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.settings import Settings

__all__ = ["JobArgs", "main", "output_uri", "parse_args", "run_job", "upgrade_candidates"]

REQUIRED = ("txnpipe_bucket", "txnpipe_source", "txnpipe_importance_key",
            "txnpipe_first", "txnpipe_last")  # fmt: skip
OPTIONAL = {
    "txnpipe_output_prefix": "glue/",
    "txnpipe_chunks_prefix": "chunks/",
    "txnpipe_base_uri": "",
}
SETTING_OPTIONS = tuple(f"txnpipe_{name}" for name in Settings.names())


@dataclass(frozen=True)
class JobArgs:
    bucket: str
    source: str
    importance_key: str
    first: int
    last: int
    output_prefix: str
    chunks_prefix: str
    base_uri: str
    settings: Settings

    @property
    def base(self) -> str:
        """Where the bucket's keys live: ``s3://bucket/`` on Glue, any Hadoop URI locally."""
        base = self.base_uri or f"s3://{self.bucket}/"
        return base if base.endswith("/") else base + "/"


def _resolved(argv: Sequence[str]) -> dict[str, str]:
    """Job arguments by name: Glue's ``getResolvedOptions`` when present, argparse otherwise.

    ``getResolvedOptions`` fails on any listed option that is absent, so optional ones are
    only asked for when they were given; Glue's own arguments (--JOB_NAME, --TempDir, ...)
    are ignored either way.
    """
    names = [*REQUIRED, *OPTIONAL, *SETTING_OPTIONS]
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        getResolvedOptions = None
    if getResolvedOptions is not None:
        given = [n for n in names if any(a == f"--{n}" or a.startswith(f"--{n}=") for a in argv)]
        # getResolvedOptions skips argv[0], the script, as in sys.argv.
        return dict(getResolvedOptions(["upgrade_percentiles", *argv], given))
    parser = argparse.ArgumentParser(prog="upgrade_percentiles", allow_abbrev=False)
    for name in names:
        parser.add_argument(f"--{name}")  # required ones are checked by parse_args
    known, _ = parser.parse_known_args(list(argv))
    return {k: v for k, v in vars(known).items() if v is not None}


def parse_args(argv: Sequence[str]) -> JobArgs:
    values = _resolved(argv)
    missing = [n for n in REQUIRED if n not in values]
    if missing:
        raise TxnpipeError(f"missing job arguments: {', '.join('--' + n for n in missing)}")
    assignments = [
        f"{name[len('txnpipe_'):]}={values[name]}" for name in SETTING_OPTIONS if name in values
    ]
    try:
        first, last = int(values["txnpipe_first"]), int(values["txnpipe_last"])
    except ValueError:
        raise TxnpipeError("--txnpipe_first and --txnpipe_last must be integers") from None
    if first < 0 or last < first:
        raise TxnpipeError(f"bad chunk range {first}..{last}")
    option = {name: values.get(name, default) for name, default in OPTIONAL.items()}
    return JobArgs(
        bucket=values["txnpipe_bucket"],
        source=values["txnpipe_source"],
        importance_key=values["txnpipe_importance_key"],
        first=first,
        last=last,
        output_prefix=option["txnpipe_output_prefix"],
        chunks_prefix=option["txnpipe_chunks_prefix"],
        base_uri=option["txnpipe_base_uri"],
        settings=Settings.from_sources(None, assignments),
    )


def output_uri(args: JobArgs) -> str:
    return f"{args.base}{args.output_prefix}{args.source}/upgrade_{args.first:06d}_{args.last:06d}/"


def state_uri(args: JobArgs, through: int) -> str:
    """Where a run keeps every merchant's walk state after chunk ``through``. The folder is
    named for the settings and the importance file too: a state made under others would
    give different points, so it is never resumed from."""
    made_under = json.dumps([args.importance_key, args.settings.as_dict()], sort_keys=True)
    tag = hashlib.sha256(made_under.encode()).hexdigest()[:12]
    return f"{args.base}{args.output_prefix}{args.source}/state/{tag}/through_{through:06d}/"


def _complete(spark: SparkSession, uri: str) -> bool:
    """Whether a Parquet folder was written to the end (Spark's ``_SUCCESS`` marker)."""
    jvm, conf = spark.sparkContext._jvm, spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    marker = jvm.org.apache.hadoop.fs.Path(uri + "_SUCCESS")  # type: ignore[union-attr]
    return bool(marker.getFileSystem(conf).exists(marker))


def read_transactions(spark: SparkSession, args: JobArgs, start: int) -> DataFrame:
    """Chunks start..last, parsed in the executors and joined with the weights, a table parsed
    in an executor too; a missing chunk or importance file fails the run, loudly."""
    importance = Importance.at(spark, f"{args.base}{args.importance_key}")
    pattern = f"{args.base}{args.chunks_prefix}{args.source}/chunk_*.csv"
    chunks = read_chunk_files(spark, pattern, start, args.last)
    return transactions_from_rdd(spark, chunks, importance, args.settings.chunk_rows)


def run_job(spark: SparkSession, args: JobArgs) -> str:
    """Compute and write the candidates, and the state after ``last``; returns where the
    candidates went. A run resumes from the state the run before it left after chunk
    first - 1 and reads only chunks first..last; without one it starts from chunk 0."""
    before = state_uri(args, args.first - 1)
    resume = args.first > 0 and _complete(spark, before)
    state = spark.read.schema(STATE_SCHEMA).parquet(before) if resume else empty_state(spark)
    transactions = read_transactions(spark, args, args.first if resume else 0)
    walked = walk_resumed(transactions, state, args.settings).persist(StorageLevel.MEMORY_AND_DISK)
    target = output_uri(args)
    # Parts written in parallel, one per partition (no sort, no single writer): the detector
    # reads every part and orders what it records itself.
    points(walked, args.first).write.mode("overwrite").parquet(target)
    kept_state(walked).write.mode("overwrite").parquet(state_uri(args, args.last))
    walked.unpersist()
    return target


def _session() -> tuple[SparkSession, object | None]:
    """Glue's session (and its Job, for commit) on Glue; a plain local session otherwise."""
    try:
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from awsglue.job import Job  # type: ignore[import-not-found]
        from pyspark.context import SparkContext
    except ImportError:
        # Plain ``python upgrade_percentiles.py``: workers must run this interpreter too.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        return SparkSession.builder.appName("txnpipe-upgrade-percentiles").getOrCreate(), None
    glue = GlueContext(SparkContext.getOrCreate())
    return glue.spark_session, Job(glue)


def main(argv: Sequence[str] | None = None) -> str:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    spark, job = _session()
    if job is not None:
        job_name = _resolved_job_name(argv)
        job.init(job_name, {"JOB_NAME": job_name})  # type: ignore[attr-defined]
    target = run_job(spark, args)
    if job is not None:
        job.commit()  # type: ignore[attr-defined]
    print(f"txnpipe upgrade candidates {args.source} {args.first}..{args.last} -> {target}")
    return target


def _resolved_job_name(argv: Sequence[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--JOB_NAME" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--JOB_NAME="):
            return arg.split("=", 1)[1]
    return "txnpipe-upgrade-percentiles"


if __name__ == "__main__":
    main()
