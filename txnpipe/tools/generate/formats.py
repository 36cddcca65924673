"""The two layouts of SPEC 2.1: file names and headers, and where a generator run put its files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LAYOUTS: tuple[str, ...] = ("banksim", "seed")

BANKSIM_TRANSACTIONS_NAME = "bs140513_032310.csv"
BANKSIM_IMPORTANCE_NAME = "bsNET140513_032310.csv"
SEED_TRANSACTIONS_NAME = "transactions.csv"
SEED_IMPORTANCE_NAME = "CustomerImportance.csv"

BANKSIM_TRANSACTIONS_HEADER = (
    "step,customer,age,gender,zipcodeOri,merchant,zipMerchant,category,amount,fraud"
)
BANKSIM_IMPORTANCE_HEADER = "Source,Target,Weight,typeTrans,fraud"
SEED_TRANSACTIONS_HEADER = (
    "TransactionId,CustomerId,MerchantId,transaction_value,gender,transaction_type,step"
)
SEED_IMPORTANCE_HEADER = "CustomerId,transaction_type,weightage,fraud"


@dataclass(frozen=True)
class GeneratedFiles:
    """Where the files went, so callers need not know each layout's file names."""

    transactions: Path
    importance: Path
    records: int


def paths(out_dir: Path, layout: str) -> tuple[Path, Path]:
    """(transactions file, importance file) of ``layout`` in ``out_dir``."""
    if layout == "banksim":
        return out_dir / BANKSIM_TRANSACTIONS_NAME, out_dir / BANKSIM_IMPORTANCE_NAME
    return out_dir / SEED_TRANSACTIONS_NAME, out_dir / SEED_IMPORTANCE_NAME
