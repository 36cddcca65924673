"""Generated input data, made once under ``bench/.data/`` and reused by later runs.

Generation is deterministic (one seed), so a cached copy is as good as a fresh one and the
benchmark does not pay ~4 s (or ~40 s at 10x) per run for data it already has.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from txnpipe.tools.generate import generate

DATA = Path(__file__).resolve().parent / ".data"
SEED = 7


@dataclass(frozen=True)
class Dataset:
    transactions: Path
    importance: Path
    rows: int
    generate_seconds: float | None  # None when reused from an earlier run


def dataset(rows: int, seed: int = SEED) -> Dataset:
    """The BankSim-layout files for ``rows`` records, generated on first use only."""
    folder = DATA / f"banksim_{rows}_{seed}"
    marker = folder / "done.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        return Dataset(Path(info["transactions"]), Path(info["importance"]), rows, None)
    started = time.perf_counter()
    files = generate(folder, rows=rows, seed=seed, layout="banksim")
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"transactions": str(files.transactions),
                                  "importance": str(files.importance), "seconds": seconds}))
    return Dataset(files.transactions, files.importance, rows, seconds)
