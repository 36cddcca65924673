"""Full-size streams end to end at default settings: the default-size generated stream
(594,643 records, 595 chunks) and the real BankSim records (220,000), each checked against
the oracle and recomputed by both batch engines (``txnpipe backfill``: exit 0 is equal to the
inline run, file for file)."""
from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import detection_files
from tests.functional.txnpipe_process import call
from tests.reference import reference_detections
from txnpipe.core.settings import Settings
from txnpipe.local.inputs import InputFiles
from txnpipe.local.runner import RunOptions, run
from txnpipe.tools.generate import generate


@pytest.mark.slow
def test_default_size_run_matches_the_reference(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    files = generate(tmp_path / "input")
    opts = RunOptions(InputFiles.check(files.transactions, files.importance), tmp_path / "out",
                      Settings(), fast=True, database_url=database_url,
                      s3_endpoint=s3_endpoint, bucket=bucket)  # fmt: skip
    summary = run(opts)
    assert (summary.chunks, summary.records) == (595, 594_643)
    expected = reference_detections(files.transactions.read_bytes(), files.importance.read_bytes())
    got = detection_files(opts.out, opts.inputs.sources[0])
    assert got == expected
    assert set(Counter(row[0] for f in got for row in f)) == {"PatId1", "PatId2", "PatId3"}
    _each_engine_recomputes_the_same(opts.out, files.importance)


REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "banksim"


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason=f"the real BankSim records are not at {REAL}")
def test_real_banksim_records_match_the_reference_on_every_engine(
    tmp_path: Path, database_url: str
) -> None:
    """Real data is where parsing and semantics meet surprises: the first 220,000 BankSim
    records and the importance file derived from them (PatId1 fires at the defaults). The
    run has its own in-process bucket, as ``txnpipe run`` does by default, which drops each
    chunk once applied: the engines recompute from the copies in DIR."""
    transactions = tmp_path / "bs140513_032310.csv"
    importance = tmp_path / "bsNET140513_032310.csv"
    for path, name in ((transactions, "bs140513_032310.first220k.csv.gz"),
                       (importance, "bsNET140513_032310.first220k.derived.csv.gz")):  # fmt: skip
        path.write_bytes(gzip.decompress((REAL / name).read_bytes()))
    opts = RunOptions(InputFiles.check(transactions, importance), tmp_path / "out", Settings(),
                      fast=True, database_url=database_url)  # fmt: skip
    summary = run(opts)
    assert (summary.chunks, summary.records) == (220, 220_000)
    chunks = sorted(p.name for p in (opts.out / "chunks" / opts.inputs.sources[0]).iterdir())
    assert chunks == ["_manifest.json", *(f"chunk_{i:06d}.csv" for i in range(220))]
    got = detection_files(opts.out, opts.inputs.sources[0])
    assert got == reference_detections(transactions.read_bytes(), importance.read_bytes())
    assert any(row[0] == "PatId1" for f in got for row in f)
    _each_engine_recomputes_the_same(opts.out, importance)


def _each_engine_recomputes_the_same(out: Path, importance: Path) -> None:
    """Each batch engine on the whole stream, in its own process, as a user runs it. On this
    size Spark's adaptive execution reads a shuffle locally after turning the join into a
    broadcast, which split a merchant across tasks when the walk was a map over partitions."""
    for engine in ("duckdb", "spark"):
        done = call("backfill", "--engine", engine, "--from", out, "--importance", importance,
                    timeout=900)  # fmt: skip
        assert done.returncode == 0, (engine, done.stdout[-2000:], done.stderr[-2000:])
        assert "identical" in done.stdout
