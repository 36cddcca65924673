"""Input data, made once under ``bench/.data/`` and reused by later runs.

Generation is deterministic (one seed), so a cached copy is as good as a fresh one and the
benchmark does not pay ~4 s (or ~40 s at 10x) per run for data it already has. Beside it,
the real BankSim records are read from ``../shared/data/banksim`` next to the repository
(decompressed under ``bench/.data/``, never copied into the repository).
"""
from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass
from pathlib import Path

from txnpipe.tools.generate import generate

DATA = Path(__file__).resolve().parent / ".data"
SEED = 7
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "banksim"
# the real files, and the names txnpipe sees them by (a stream is named by its file)
REAL_FILES = {
    "bs140513_032310.first220k.csv.gz": "bs140513_032310.csv",
    "bsNET140513_032310.first220k.derived.csv.gz": "bsNET140513_032310.csv",
}


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


def real_dataset() -> Dataset | None:
    """The real BankSim records and their derived importance file (``REAL``'s README), or
    None where the folder is absent (the page then says so)."""
    if not REAL.is_dir():
        return None
    folder = DATA / "banksim_real"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for packed, name in REAL_FILES.items():
        path = folder / name
        if not path.exists():
            part = path.with_suffix(".part")
            part.write_bytes(gzip.decompress((REAL / packed).read_bytes()))
            part.rename(path)
        paths.append(path)
    transactions, importance = paths
    with transactions.open("rb") as f:
        rows = sum(1 for _ in f) - 1  # the header
    return Dataset(transactions, importance, rows, None)
