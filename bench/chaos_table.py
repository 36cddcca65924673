"""Chaos runs on several seeds against a clean run: the README's reliability table.

Usage: python bench/chaos_table.py [--rows N] [--seeds 1 2 3 4 5]
Each run starts its own embedded PostgreSQL (so the chaos restart happens) and moto S3.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import detection_files  # noqa: E402
from tests.functional.datasets import scaled_settings  # noqa: E402
from txnpipe.generate import generate  # noqa: E402
from txnpipe.inputs import InputFiles  # noqa: E402
from txnpipe.local.runner import RunOptions, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="txnpipe-chaos-"))
    files = generate(work / "input", rows=args.rows, seed=7)
    inputs = InputFiles.check(files.transactions, files.importance)
    settings = scaled_settings(args.rows)

    def outcome(chaos: int | None) -> tuple[list[list[tuple[str, ...]]], object]:
        out = work / f"out-{chaos}"
        summary = run(RunOptions(inputs, out, settings, fast=True, chaos=chaos))
        return detection_files(out, inputs.source), summary.chaos

    clean, _ = outcome(None)
    clean_rows = Counter(row for f in clean for row in f)
    print(f"{args.rows:,} records, {sum(clean_rows.values())} detections in {len(clean)} files")
    print("| seed | events duplicated | events reordered | events delayed | crashes injected"
          " | PostgreSQL restarts | rows lost | rows duplicated | files identical |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for seed in args.seeds:
        files_, report = outcome(seed)
        rows = Counter(row for f in files_ for row in f)
        lost = sum((clean_rows - rows).values())
        duplicated = sum((rows - clean_rows).values())
        crashes = sum(report.crashes.values())  # type: ignore[attr-defined]
        print(f"| {seed} | {report.duplicated} | {report.reordered} | {report.delayed} "  # type: ignore[attr-defined]
              f"| {crashes} | {report.restarts} | {lost} | {duplicated} "  # type: ignore[attr-defined]
              f"| {'yes' if files_ == clean else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
