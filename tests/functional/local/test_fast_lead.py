"""A ``--fast`` run's chunker stays at most ``FAST_LEAD`` chunks ahead of its detector: the
rest of the stream waits in its input, not in the in-process bucket's memory."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from tests.conftest import detection_files
from tests.functional.datasets import dataset
from txnpipe.core.keys import chunk_key
from txnpipe.local import runner
from txnpipe.local.inputs import InputFiles
from txnpipe.local.runner import RunOptions, run


def test_the_chunker_waits_for_the_detector_when_far_ahead(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Chunk k is put (its copy in DIR written) only once chunk k - LEAD is applied. Unpaced,
    the chunker writes a chunk in a few milliseconds and the detector applies one in tens,
    so without the bound the stream's chunks would all be written while most wait."""
    lead = 4
    monkeypatch.setattr(runner, "FAST_LEAD", lead)
    ds = dataset(rows=6_000)
    ds = replace(ds, settings=replace(ds.settings, chunk_rows=50))
    opts = RunOptions(InputFiles.check(ds.transactions, ds.importance), tmp_path / "out",
                      ds.settings, fast=True, database_url=database_url,
                      s3_endpoint=s3_endpoint, bucket=bucket)  # fmt: skip
    summary = run(opts)
    assert summary.chunks == 120
    assert detection_files(opts.out, opts.inputs.sources[0]) == ds.expected()
    with psycopg.connect(database_url) as conn:
        applied = sorted(t.timestamp() for (t,) in conn.execute(
            "SELECT applied_at FROM txnpipe.chunk_log ORDER BY chunk"))  # fmt: skip
    written = [os.stat(opts.out / chunk_key(opts.inputs.sources[0], k)).st_mtime
               for k in range(summary.chunks)]  # fmt: skip
    ahead = [sum(1 for t in applied if t < put) for put in written]
    # when chunk k was put, at least k - lead + 1 chunks had been applied
    assert all(done >= k - lead + 1 for k, done in enumerate(ahead)), ahead
