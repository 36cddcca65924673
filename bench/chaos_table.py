"""Chaos runs on several seeds against a clean run: the README's reliability table.

Usage: python bench/chaos_table.py [--rows N] [--seeds 1 2 3 4 5]
By default the default generated data (594,643 records) at the default settings; with
``--rows`` a smaller file with its count thresholds scaled so that every pattern fires. Each
run starts its own embedded PostgreSQL (so the chaos restart happens) and moto S3; the
detection files are compared with the clean run's, row for row and file for file, the two
timestamp columns aside.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import detection_files
from tests.functional.datasets import scaled_settings
from txnpipe.core.settings import Settings
from txnpipe.local.inputs import InputFiles
from txnpipe.local.runner import RunOptions, run
from txnpipe.tools.generate import FULL_ROWS, generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="txnpipe-chaos-"))
    files = generate(work / "input", rows=args.rows, seed=7)
    inputs = InputFiles.check(files.transactions, files.importance)
    settings = Settings() if args.rows == FULL_ROWS else scaled_settings(args.rows)

    def outcome(chaos: int | None) -> tuple[list[list[tuple[str, ...]]], object]:
        out = work / f"out-{chaos}"
        summary = run(RunOptions(inputs, out, settings, fast=True, chaos=chaos))
        return detection_files(out, inputs.sources[0]), summary.chaos

    clean, _ = outcome(None)
    clean_rows = Counter(row for f in clean for row in f)
    print(f"{args.rows:,} records, {sum(clean_rows.values())} detections in {len(clean)} files")
    print("| seed | events duplicated | events reordered | events delayed | events lost"
          " | crashes injected | PostgreSQL restarts | rows lost | rows duplicated"
          " | files identical |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for seed in args.seeds:
        files_, report = outcome(seed)
        rows = Counter(row for f in files_ for row in f)
        lost = sum((clean_rows - rows).values())
        duplicated = sum((rows - clean_rows).values())
        crashes = sum(report.crashes.values())  # type: ignore[attr-defined]
        print(f"| {seed} | {report.duplicated} | {report.reordered} | {report.delayed} "  # type: ignore[attr-defined]
              f"| {report.lost} | {crashes} | {report.restarts} | {lost} | {duplicated} "  # type: ignore[attr-defined]
              f"| {'yes' if files_ == clean else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
