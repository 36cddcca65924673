"""Spark batch engine and the Glue job script: parity with the oracle and with DuckDB.

One local SparkSession for the module (``local[2]``, 4 shuffle partitions, no UI). The Glue
script is loaded from its file, as Glue runs it; without ``awsglue`` it falls back to
argparse and a plain SparkSession, and ``--txnpipe_base_uri`` points it at a local folder
laid out like the bucket.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.batchdata import (
    DENSE,
    PROFILES,
    Stream,
    make_stream,
    reference_points,
    reference_upgrade_first,
    threshold_crossings,
    write_run_dir,
)
from txnpipe.batch import duckdb_engine
from txnpipe.batch.frames import transactions_table
from txnpipe.core.detections import Candidate, first_points
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.weights import parse_weights

SCRIPT = Path(__file__).resolve().parents[3] / "glue_jobs" / "upgrade_percentiles.py"


def _load_job() -> ModuleType:
    spec = importlib.util.spec_from_file_location("upgrade_percentiles", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def job() -> ModuleType:
    pytest.importorskip("pyspark")
    return _load_job()


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("txnpipe-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Stream:
    return make_stream(tmp_path_factory.mktemp("spark"))


@pytest.fixture(scope="module")
def frame(spark, stream: Stream):  # type: ignore[no-untyped-def]
    from txnpipe.batch import spark_engine

    df = spark_engine.transactions_df(
        spark, stream.indexed(), stream.importance, 500, partitions=2
    ).cache()
    df.count()
    yield df
    df.unpersist()


@pytest.fixture(scope="module")
def arrow(stream: Stream) -> pa.Table:
    return transactions_table(stream.indexed(), parse_weights(stream.importance), 500)


def _candidates(  # type: ignore[no-untyped-def]
    spark, frame, settings, first: int, last: int
) -> list[Candidate]:
    from txnpipe.batch import spark_engine

    rows = spark_engine.upgrade_candidates(spark, frame, settings, first, last).collect()
    return sorted(Candidate(r.chunk, r.merchant, r.customer) for r in rows)


# -- the job's arguments (no Spark needed) -------------------------------------------------


def test_job_arguments_default_and_override(job: ModuleType) -> None:
    argv = ["--JOB_NAME", "j", "--TempDir", "s3://b/glue/tmp/",
            "--txnpipe_bucket", "b", "--txnpipe_source", "bs1",
            "--txnpipe_importance_key", "inputs/imp.csv", "--txnpipe_first", "3",
            "--txnpipe_last", "9", "--txnpipe_chunk_rows", "500",
            "--txnpipe_upgrade_count_percentile", "0.8"]  # fmt: skip
    args = job.parse_args(argv)
    assert (args.first, args.last) == (3, 9)
    assert (args.output_prefix, args.chunks_prefix) == ("glue/", "chunks/")
    assert args.settings.chunk_rows == 500
    assert args.settings.upgrade_count_percentile == 0.8
    assert args.settings.upgrade_min_merchant_txns == 50_000
    assert job.output_uri(args) == "s3://b/glue/bs1/upgrade_000003_000009/"
    with pytest.raises(TxnpipeError, match="txnpipe_source"):
        job.parse_args([a for a in argv if a not in ("--txnpipe_source", "bs1")])
    with pytest.raises(TxnpipeError, match="bad chunk range"):
        job.parse_args([*argv, "--txnpipe_first", "10"])
    with pytest.raises(TxnpipeError, match="upgrade_count_percentile"):
        job.parse_args([*argv, "--txnpipe_upgrade_count_percentile", "2"])


def test_job_script_imports_without_side_effects() -> None:
    """Importing the script starts no Spark and runs no job (a fresh interpreter checks)."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('upgrade_percentiles', {str(SCRIPT)!r})\n"
        "module = importlib.util.module_from_spec(spec); sys.modules[spec.name] = module\n"
        "spec.loader.exec_module(module)\n"
        "from pyspark import SparkContext\n"
        "assert SparkContext._active_spark_context is None\n"
        "assert callable(module.main) and callable(module.upgrade_candidates)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert "percentile_approx" not in SCRIPT.read_text()


# -- parity -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_whole_stream_first_points_equal_the_oracle(  # type: ignore[no-untyped-def]
    spark, frame, stream: Stream, profile: str
) -> None:
    settings = PROFILES[profile]
    expected = reference_upgrade_first(reference_points(stream, settings))
    assert expected
    assert first_points(_candidates(spark, frame, settings, 0, stream.last)) == expected


@pytest.mark.slow
def test_candidates_equal_duckdb_per_range_and_merge_like_one_run(  # type: ignore[no-untyped-def]
    spark, frame, arrow: pa.Table, stream: Stream
) -> None:
    expected = reference_upgrade_first(reference_points(stream, DENSE))
    crossed = threshold_crossings(stream, DENSE["upgrade_min_merchant_txns"])
    crossings = sorted(set(crossed.values()))
    a = crossings[len(crossings) // 2] - 3
    assert any(a < c <= stream.last for c in crossings)  # a merchant crosses inside [a, last]
    merged: list[Candidate] = []
    for first, last in ((0, a - 1), (a, stream.last)):
        got = _candidates(spark, frame, DENSE, first, last)
        assert got == duckdb_engine.upgrade_candidates(arrow, DENSE, first, last)
        merged += got
    assert first_points(merged) == expected


@pytest.mark.slow
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_detections_equal_the_oracle(  # type: ignore[no-untyped-def]
    spark, frame, stream: Stream, profile: str
) -> None:
    from txnpipe.batch import spark_engine

    settings = PROFILES[profile]
    points = reference_points(stream, settings)
    found = spark_engine.detections(spark, frame, settings)
    assert {r.pattern for r in found} == {1, 2, 3}
    assert [(r.chunk, r.file_row()) for r in found] == [
        (k, row) for k, rows in enumerate(points) for row in rows
    ]


@pytest.mark.slow
def test_glue_job_main_reads_chunks_and_writes_parquet(  # type: ignore[no-untyped-def]
    spark, job: ModuleType, arrow: pa.Table, stream: Stream, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    write_run_dir(bucket, stream, reference_points(stream, DENSE))
    (bucket / "inputs").mkdir()
    (bucket / "inputs" / "imp.csv").write_bytes(stream.importance)
    first, last = 25, 40
    settings = [x for name, value in DENSE.items() for x in (f"--txnpipe_{name}", str(value))]
    argv = ["--txnpipe_bucket", "unused", "--txnpipe_base_uri", bucket.as_uri() + "/",
            "--txnpipe_source", stream.source, "--txnpipe_importance_key", "inputs/imp.csv",
            "--txnpipe_first", str(first), "--txnpipe_last", str(last), *settings]  # fmt: skip
    target = job.main(argv)
    assert target.endswith(f"glue/{stream.source}/upgrade_000025_000040/")
    written = pq.read_table(bucket / "glue" / stream.source / "upgrade_000025_000040")
    assert written.column_names == ["chunk", "merchant", "customer"]
    got = sorted(Candidate(*row.values()) for row in written.to_pylist())
    assert got == duckdb_engine.upgrade_candidates(arrow, DENSE, first, last)
    assert got

    (bucket / "chunks" / stream.source / "chunk_000007.csv").unlink()
    with pytest.raises(TxnpipeError, match="missing: 7"):
        job.main(argv)


@pytest.mark.slow
def test_streaming_glue_runs_resume_from_the_last_runs_state(  # type: ignore[no-untyped-def]
    spark, job: ModuleType, arrow: pa.Table, stream: Stream, tmp_path: Path
) -> None:
    """Runs 0..19, 20..33, 34..last: each after the first resumes from the state the one
    before it wrote and reads only its own chunks (the earlier files are gone when it runs),
    and together they give what one run over the whole range gives. A run under other
    settings does not resume from that state: it reads from chunk 0, and fails without it."""
    bucket = tmp_path / "bucket"
    write_run_dir(bucket, stream, reference_points(stream, DENSE))
    (bucket / "inputs").mkdir()
    (bucket / "inputs" / "imp.csv").write_bytes(stream.importance)
    chunks = bucket / "chunks" / stream.source
    last = len(list(chunks.glob("chunk_*.csv"))) - 1
    settings = [x for name, value in DENSE.items() for x in (f"--txnpipe_{name}", str(value))]

    def run(first: int, end: int, *extra: str) -> list[Candidate]:
        argv = ["--txnpipe_bucket", "unused", "--txnpipe_base_uri", bucket.as_uri() + "/",
                "--txnpipe_source", stream.source, "--txnpipe_importance_key", "inputs/imp.csv",
                "--txnpipe_first", str(first), "--txnpipe_last", str(end), *settings, *extra]  # fmt: skip
        written = pq.read_table(Path(job.main(argv).removeprefix("file:")))
        return sorted(Candidate(*row.values()) for row in written.to_pylist())

    got: list[Candidate] = []
    for first, end in ((0, 19), (20, 33), (34, last)):
        got += run(first, end)
        for k in range(first, end + 1):  # a resumed run must not need them
            (chunks / f"chunk_{k:06d}.csv").rename(tmp_path / f"chunk_{k:06d}.csv")
    assert len(list((bucket / "glue" / stream.source / "state").glob("*/through_*"))) == 3
    assert got == duckdb_engine.upgrade_candidates(arrow, DENSE, 0, last)
    assert {c.chunk for c in got} & set(range(20, 34)) and {c.chunk for c in got if c.chunk > 33}
    with pytest.raises(TxnpipeError, match="missing: 0, 1, 2"):  # another state: from 0
        run(34, last, "--txnpipe_upgrade_weight_percentile", "0.5")


_LAYOUTS = {  # importance header, and one row of it from (customer, merchant, kind, weight)
    "banksim": ("Source,Target,Weight,typeTrans", "{0},{1},{3},{2}"),
    "seed": ("CustomerId,transaction_type,weightage", "{0},{2},{3}"),
}


@pytest.mark.parametrize("layout", sorted(_LAYOUTS))
def test_the_weights_table_holds_each_keys_mean_bit_for_bit(spark, layout: str) -> None:  # type: ignore[no-untyped-def]
    """Duplicate keys' rows are summed in file order, whatever partition each lands in:
    0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1 differ in the last bit, and the table must give each
    key exactly ``parse_weights``'s mean. Rows that SPEC 2.2 skips stay out."""
    from txnpipe.batch.spark_engine import Importance, weights_frame

    header, row = _LAYOUTS[layout]
    rows = [(f"C{i % 40}", "M1", f"kind{i % 3}", str((i % 7) / 10)) for i in range(600)]
    rows += [("X", "M1", "k", w) for w in ("0.1", "0.2", "0.3")]
    rows += [("Y", "M1", "k", w) for w in ("0.3", "0.2", "0.1")]
    rows += [("Z", "M1", "k", "not a number"), ("", "M1", "k", "1")]
    data = "\n".join([header, *(row.format(*r) for r in rows), ""]).encode()
    expected = parse_weights(data).by_key
    merchant = "M1" if layout == "banksim" else ""
    assert expected["X", merchant, "k"] != expected["Y", merchant, "k"]
    assert ("Z", merchant, "k") not in expected
    got = weights_frame(spark, Importance.of_bytes(spark, data)).collect()
    assert {(r["customer"], r["weight_merchant"], r["kind"]): r["weight"] for r in got} == expected
    assert len(got) == len(expected)


def test_each_transaction_has_the_weight_duckdb_gives_it(  # type: ignore[no-untyped-def]
    frame, arrow: pa.Table
) -> None:
    """The weights joined as a table give every record the weight the lookup gives it (None
    where its key is absent)."""
    weights = {(r["chunk"], r["record"]): r["weight"] for r in frame.collect()}
    assert weights == dict(zip(zip(arrow["chunk"].to_pylist(), arrow["record"].to_pylist()),
                               arrow["weight"].to_pylist()))  # fmt: skip
    assert None in weights.values() and len(set(weights.values())) > 2


def test_the_glue_job_names_a_missing_importance_file(  # type: ignore[no-untyped-def]
    spark, job: ModuleType, stream: Stream, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    write_run_dir(bucket, stream, reference_points(stream, DENSE))
    argv = ["--txnpipe_bucket", "unused", "--txnpipe_base_uri", bucket.as_uri() + "/",
            "--txnpipe_source", stream.source, "--txnpipe_importance_key", "inputs/gone.csv",
            "--txnpipe_first", "0", "--txnpipe_last", "3"]  # fmt: skip
    with pytest.raises(TxnpipeError, match="importance file .*inputs/gone.csv not found"):
        job.main(argv)
