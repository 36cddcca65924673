"""Chaos runs: duplicated, reordered, delayed and lost events, crashes, a database restart; the
same output as a clean run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import detection_files
from tests.functional.datasets import dataset
from txnpipe.local.chaos import FAULT_POINTS
from txnpipe.local.inputs import InputFiles
from txnpipe.local.runner import RunOptions, run


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chaos_run_gives_the_clean_output(
    seed: int, tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    opts = RunOptions(InputFiles.check(ds.transactions, ds.importance), tmp_path, ds.settings,
                      fast=True, database_url=database_url, s3_endpoint=s3_endpoint,
                      bucket=bucket, chaos=seed)  # fmt: skip
    summary = run(opts)
    assert summary.chaos is not None
    injected = summary.chaos
    assert injected.duplicated and injected.delayed and injected.lost
    assert set(injected.crashes) == set(FAULT_POINTS)
    log = json.loads((tmp_path / "run.json").read_text())
    assert log["chaos"] == injected.as_dict() and log["chaos"]["lost"] == injected.lost
    assert detection_files(tmp_path, opts.inputs.sources[0]) == ds.expected()


def test_embedded_postgres_restart_mid_run_is_survived(tmp_path: Path, s3_endpoint: str,
                                                       bucket: str) -> None:  # fmt: skip
    ds = dataset()
    opts = RunOptions(InputFiles.check(ds.transactions, ds.importance), tmp_path, ds.settings,
                      fast=True, s3_endpoint=s3_endpoint, bucket=bucket, chaos=4)  # fmt: skip
    summary = run(opts)
    assert summary.chaos is not None and summary.chaos.restarts == 1
    assert detection_files(tmp_path, opts.inputs.sources[0]) == ds.expected()


def test_chaos_with_a_batch_engine_loses_its_completion_notices_and_still_finishes(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    opts = RunOptions(InputFiles.check(ds.transactions, ds.importance), tmp_path, ds.settings,
                      fast=True, database_url=database_url, s3_endpoint=s3_endpoint,
                      bucket=bucket, chaos=5, upgrade_engine="duckdb")  # fmt: skip
    summary = run(opts)
    assert summary.chaos is not None and summary.chaos.lost
    got = sorted(row for f in detection_files(tmp_path, opts.inputs.sources[0]) for row in f)
    assert got == sorted(row for f in ds.expected() for row in f)
