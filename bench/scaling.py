"""The scaling curve: the inline run and both batch engines at 1x, 3x and 10x the data.

Each point is a separate ``txnpipe`` process measured as a whole tree (``tree_memory``):

- ``run``: ``txnpipe run --fast`` end to end on its own embedded PostgreSQL (the inline
  detector; the tree holds the run, moto and the server);
- ``duckdb`` and ``spark``: ``txnpipe backfill`` of that run's folder (the tree holds the
  engine's worker processes, and Spark's JVM). Exit 0 means the engine's detections equal
  the inline run's file for file; 1 a difference; 3 the engine failed.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from data import Dataset, dataset
from measure import say
from tree_memory import measure

SCALES = (1, 3, 10)
ENGINES = ("duckdb", "spark")
TXNPIPE = [sys.executable, "-m", "txnpipe"]


def scaling_curve(rows: int, scales: Sequence[int] = SCALES) -> list[dict[str, Any]]:
    """One entry per scale: records, then each measured command's seconds, peak and exit."""
    points = []
    for scale in scales:
        data = dataset(rows * scale)
        say(f"== scaling {scale}x: {rows * scale:,} records, txnpipe run --fast")
        points.append({"scale": scale, "rows": rows * scale, **run_and_backfill(data)})
    return points


def run_and_backfill(data: Dataset) -> dict[str, Any]:
    """``txnpipe run --fast`` of ``data``, then each engine's backfill of its folder."""
    work = Path(tempfile.mkdtemp(prefix="txnpipe-scale-"))
    try:
        out, logs = work / "out", work / "logs"
        logs.mkdir()
        point: dict[str, Any] = {}
        point["run"] = asdict(measure(
            [*TXNPIPE, "run", "--fast", "--transactions", str(data.transactions),
             "--importance", str(data.importance), "--out", str(out),
             "--pg-data", str(work / "pg")], log=logs / "run.log"))  # fmt: skip
        say(f"   {_line(point['run'])}")
        for engine in ENGINES:
            say(f"   backfill --engine {engine}")
            point[engine] = asdict(measure(
                [*TXNPIPE, "backfill", "--engine", engine, "--from", str(out),
                 "--importance", str(data.importance)], log=logs / f"{engine}.log"))  # fmt: skip
            say(f"   {_line(point[engine])}")
        return point
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _line(m: dict[str, Any]) -> str:
    return f"{m['seconds']:.1f} s, whole tree peak {m['peak_tree_mb']:.0f} MB, exit {m['returncode']}"
