"""``txnpipe backfill``: recompute a finished stream's detections and compare them per file.

Run folders come from two places: one built from the oracle (chunk files by
``reference_chunks``, detection files in the detector's CSV), and one written by a real
``txnpipe run --fast`` (embedded PostgreSQL and moto from the session fixtures). Tampering
with the files must be reported by file and row, with exit 1.
"""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from tests.batchdata import DENSE, Stream, make_stream, reference_points, write_run_dir
from txnpipe.batch.backfill import backfill, compare
from txnpipe.core.keys import detections_key, manifest_key
from txnpipe.core.settings import Settings
from txnpipe.local.inputs import InputFiles
from txnpipe.tools.cli import main

SET_ARGS = [x for name, value in DENSE.items() if name != "chunk_rows"
            for x in ("--set", f"{name}={value}")]  # fmt: skip


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Stream:
    return make_stream(tmp_path_factory.mktemp("backfill-input"))


@pytest.fixture(scope="module")
def reference_run(stream: Stream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference-run")
    files = write_run_dir(out, stream, reference_points(stream, DENSE))
    assert len(files) >= 5
    return out


@pytest.fixture
def run_dir(reference_run: Path, tmp_path: Path) -> Path:
    """A private copy each test may tamper with."""
    return Path(shutil.copytree(reference_run, tmp_path / "run"))


def _cli(run: Path, stream: Stream, *extra: str) -> int:
    return main(["backfill", "--from", str(run), "--importance", str(stream.importance_path),
                 "--chunk-rows", "500", *SET_ARGS, *extra])  # fmt: skip


def _rewrite(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(edit(rows))
    path.write_text(out.getvalue(), encoding="utf-8")


def test_identical_files_exit_0(
    run_dir: Path, stream: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(run_dir, stream) == 0
    out = capsys.readouterr().out
    assert "identical" in out and "60 chunks" in out and "with duckdb" in out


def test_a_deleted_and_a_bogus_row_are_named_exit_1(
    run_dir: Path, stream: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    deleted: list[str] = []

    def delete(rows: list[list[str]]) -> list[list[str]]:
        deleted.extend(rows[17])
        return rows[:17] + rows[18:]

    bogus = ["2026-11-29T09:05:03.123+05:30", "2026-11-29T09:05:03.130+05:30",
             "PatId2", "CHILD", "C_bogus", "M_bogus"]  # fmt: skip
    _rewrite(run_dir / detections_key(stream.source, 1), delete)
    _rewrite(run_dir / detections_key(stream.source, 3), lambda rows: [*rows, bogus])

    assert _cli(run_dir, stream) == 1
    out = capsys.readouterr().out
    assert f"missing in detections_000001.csv: {','.join(deleted[2:])}" in out
    assert "extra in detections_000003.csv: PatId2,CHILD,C_bogus,M_bogus" in out
    assert "DIFFERENT: 1 missing, 1 extra, 0 misordered" in out


def test_report_names_rows_by_file(run_dir: Path, stream: Stream) -> None:
    """A row moved to another file is missing from one and extra in the other; a swap within
    a file is a misordering; a lost last file is all missing."""
    settings = Settings(**DENSE)
    first = run_dir / detections_key(stream.source, 0)
    second = run_dir / detections_key(stream.source, 2)
    moved: list[str] = []

    def take(rows: list[list[str]]) -> list[list[str]]:
        moved.extend(rows[1])
        return [rows[0], *rows[2:]]

    _rewrite(first, take)
    _rewrite(second, lambda rows: [rows[0], rows[2], rows[1], *rows[3:], moved])
    files = sorted((run_dir / "detections" / stream.source).glob("*.csv"))
    last_rows = len(files[-1].read_text().splitlines()) - 1
    files[-1].unlink()

    report = backfill(run_dir, stream.importance_path, settings)
    assert not report.identical
    row = tuple(moved[2:])
    assert [(d.file, d.row) for d in report.extra] == [(2, row)]
    assert (0, row) in [(d.file, d.row) for d in report.missing]
    assert sum(d.file == len(files) - 1 for d in report.missing) == last_rows
    assert report.misordered == []  # file 2 also has an extra row, so it is not "only" misordered
    assert compare([[("a",) * 4, ("b",) * 4]], {0: [("b",) * 4, ("a",) * 4]})[2] == [0]


def test_input_errors_exit_2(
    run_dir: Path, stream: Stream, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["backfill", "--from", str(run_dir), "--importance",
                 str(stream.importance_path), *SET_ARGS]) == 2  # fmt: skip
    assert "chunk_rows=1000" in capsys.readouterr().err  # the run used 500
    assert _cli(run_dir, stream, "--source", "nope") == 2
    assert "no chunks for source 'nope'" in capsys.readouterr().err
    assert _cli(tmp_path / "absent", stream) == 2
    (run_dir / "chunks" / "other").mkdir()
    assert _cli(run_dir, stream) == 2
    assert "--source is needed" in capsys.readouterr().err
    assert _cli(run_dir, stream, "--source", stream.source) == 0
    (run_dir / manifest_key(stream.source)).unlink()
    assert _cli(run_dir, stream, "--source", stream.source) == 2
    assert "stream has not ended" in capsys.readouterr().err
    assert _cli(run_dir, stream, "--engine", "pandas") == 2


def test_an_engine_that_fails_exits_3_with_one_line(run_dir: Path, stream: Stream) -> None:
    """Out of memory is no difference found: exit 3, the engine's reason on one line, and
    DuckDB's spill folder gone with it."""
    from tests.functional.txnpipe_process import call

    args = ["backfill", "--from", run_dir, "--importance", stream.importance_path,
            "--chunk-rows", "500", *SET_ARGS]  # fmt: skip
    failed = call(*args, "--memory-limit", "1MB")
    assert failed.returncode == 3, failed.stderr
    assert failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr
    assert "txnpipe: error: the duckdb engine failed: Out of Memory Error" in failed.stderr
    assert call(*args, "--memory-limit", "256MB").returncode == 0


def test_a_bad_memory_limit_exits_2(run_dir: Path, stream: Stream,
                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    for size in ("lots", "0GB", "2TB"):
        assert _cli(run_dir, stream, "--memory-limit", size) == 2
        assert "is not a size such as 512MB or 2GB" in capsys.readouterr().err


@pytest.mark.slow
def test_spark_engine_agrees(
    run_dir: Path, stream: Stream, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    try:
        assert _cli(run_dir, stream, "--engine", "spark") == 0
        assert "identical" in capsys.readouterr().out
        _rewrite(run_dir / detections_key(stream.source, 4), lambda rows: rows[:-1])
        assert _cli(run_dir, stream, "--engine", "spark") == 1
        assert "missing in detections_000004.csv" in capsys.readouterr().out
    finally:
        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()


def test_backfill_of_a_real_run(
    stream: Stream, database_url: str, s3_endpoint: str, bucket: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The detector's own output (PostgreSQL, events, files of 100) passes the check."""
    from txnpipe.local.runner import RunOptions, run

    transactions = tmp_path / "bs140513_032310.csv"
    transactions.write_bytes(stream.transactions)
    out = tmp_path / "out"
    summary = run(
        RunOptions(
            inputs=InputFiles.check(transactions, stream.importance_path), out=out,
            settings=Settings(**DENSE), fast=True, database_url=database_url,
            s3_endpoint=s3_endpoint, bucket=bucket,
        )
    )  # fmt: skip
    assert summary.files >= 5
    assert _cli(out, stream) == 0
    assert "identical" in capsys.readouterr().out
    _rewrite(out / detections_key(stream.source, 0), lambda rows: rows[:-1])
    assert _cli(out, stream) == 1
