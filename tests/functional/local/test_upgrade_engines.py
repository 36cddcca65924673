"""PatId1 on a batch engine (SPEC 4.4): the same set of detections as inline, runs coalesced."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import detection_files
from tests.functional.datasets import dataset
from txnpipe.local.inputs import InputFiles
from txnpipe.local.runner import RunOptions, run


def _rows(out: Path, source: str) -> list[tuple[str, str, str, str]]:
    return [row for f in detection_files(out, source) for row in f]


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.slow)])
def test_batch_engine_gives_the_inline_set_of_detections(
    engine: str, tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    opts = RunOptions(InputFiles.check(ds.transactions, ds.importance), tmp_path, ds.settings,
                      fast=True, database_url=database_url, s3_endpoint=s3_endpoint,
                      bucket=bucket, upgrade_engine=engine)  # fmt: skip
    run(opts)
    got = _rows(tmp_path, opts.inputs.sources[0])
    expected = [row for f in ds.expected() for row in f]
    assert sorted(got) == sorted(expected)
    assert sum(r[0] == "PatId1" for r in got) >= 5
    sizes = [len(f) for f in detection_files(tmp_path, opts.inputs.sources[0])]
    assert all(n == ds.settings.detection_batch_rows for n in sizes[:-1])
