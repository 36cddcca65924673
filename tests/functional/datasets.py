"""Small generated data sets whose settings are scaled so every pattern fires."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.reference import reference_detections
from txnpipe.core.settings import Settings
from txnpipe.tools.generate import FULL_ROWS, generate


@dataclass(frozen=True)
class Dataset:
    transactions: Path
    importance: Path
    settings: Settings

    def expected(self) -> list[list[tuple[str, str, str, str]]]:
        return _expected(self)


def scaled_settings(rows: int, **overrides: float) -> Settings:
    """Count thresholds scaled to the file, and looser PatId1/PatId2 rules for more rows."""
    scale = rows / FULL_ROWS
    values = {
        "chunk_rows": "500",
        "detection_batch_rows": "7",
        "child_min_txns": "30",
        "child_max_avg_value": "30",
        "upgrade_count_percentile": "0.9",
        "upgrade_weight_percentile": "0.3",
        "upgrade_min_merchant_txns": str(round(50_000 * scale)),
        "dei_min_female_customers": str(round(1_000 * scale)),
        **{k: str(v) for k, v in overrides.items()},
    }
    return Settings().replace(values)


@cache
def dataset(layout: str = "banksim", rows: int = 12_000, seed: int = 7) -> Dataset:
    folder = Path(tempfile.mkdtemp(prefix=f"txnpipe-{layout}-{rows}-"))
    files = generate(folder, rows=rows, seed=seed, layout=layout)
    return Dataset(files.transactions, files.importance, scaled_settings(rows))


@cache
def _expected(ds: Dataset) -> list[list[tuple[str, str, str, str]]]:
    return reference_detections(
        ds.transactions.read_bytes(), ds.importance.read_bytes(), ds.settings.as_dict()
    )
