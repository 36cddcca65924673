"""Small files and `txnpipe run --fast` in this process, for the CLI's tests."""
from __future__ import annotations

from pathlib import Path

from txnpipe.tools.cli import main

SEED_HEADER = "CustomerId,MerchantId,transaction_value,gender,transaction_type\n"
IMPORTANCE = "CustomerId,transaction_type,weightage\n"


def write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def run_fast(tmp_path: Path, tx: Path, imp: Path, *extra: str) -> int:
    return main(["run", "--transactions", str(tx), "--importance", str(imp),
                 "--out", str(tmp_path / "out"), "--fast", *extra])  # fmt: skip
