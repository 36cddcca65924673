"""The default-size generated stream (594,643 records, 595 chunks) end to end, at default settings."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import detection_files
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
