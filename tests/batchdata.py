"""Shared inputs and oracles for the batch-engine tests (DuckDB, Spark, backfill).

Generated BankSim-shaped data at 30,000 rows with 500-record chunks (60 evaluation points).
Two settings profiles: ``SCALED`` scales SPEC 6's absolute counts by rows / FULL_ROWS (the
generator's docstring: otherwise PatId1 and PatId3 cannot fire on small files); ``DENSE``
also lowers the merchant threshold and widens both percentiles, so hundreds of PatId1
detections appear and many merchants cross the threshold partway through the stream.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.reference import reference_chunks, reference_detections_by_point
from txnpipe.core.detections import RecordedDetection, detections_csv
from txnpipe.core.keys import chunk_key, detections_key, manifest_key
from txnpipe.tools.generate import FULL_ROWS, generate

ROWS = 30_000
CHUNK_ROWS = 500
_SCALE = ROWS / FULL_ROWS
SCALED: dict[str, float | int] = {
    "chunk_rows": CHUNK_ROWS,
    "upgrade_min_merchant_txns": round(50_000 * _SCALE),
    "dei_min_female_customers": round(1_000 * _SCALE),
}
DENSE: dict[str, float | int] = {
    **SCALED,
    "upgrade_min_merchant_txns": 300,
    "upgrade_count_percentile": 0.8,
    "upgrade_weight_percentile": 0.3,
}
PROFILES = {"scaled": SCALED, "dense": DENSE}
_PATTERN_NUMBER = {"PatId1": 1, "PatId2": 2, "PatId3": 3}


@dataclass(frozen=True)
class Stream:
    transactions: bytes
    importance: bytes
    chunks: list[bytes]
    importance_path: Path
    source: str

    @property
    def last(self) -> int:
        return len(self.chunks) - 1

    def indexed(self) -> list[tuple[int, bytes]]:
        return list(enumerate(self.chunks))


def make_stream(folder: Path, layout: str = "banksim", seed: int = 7) -> Stream:
    files = generate(folder, rows=ROWS, seed=seed, layout=layout)
    tx = files.transactions.read_bytes()
    return Stream(tx, files.importance.read_bytes(), reference_chunks(tx, CHUNK_ROWS),
                  files.importance, files.transactions.name.rsplit(".", 1)[0])  # fmt: skip


def reference_points(stream: Stream, settings: dict[str, float | int]) -> list[list[tuple]]:
    return reference_detections_by_point(stream.transactions, stream.importance, settings)


def reference_upgrade_first(points: list[list[tuple]]) -> dict[tuple[str, str], int]:
    """(merchant, customer) -> the point that emitted PatId1 for it (the oracle's emit-once)."""
    return {(r[3], r[2]): k for k, rows in enumerate(points) for r in rows if r[0] == "PatId1"}


def threshold_crossings(stream: Stream, minimum: int) -> dict[str, int]:
    """merchant -> the first chunk at which N(m) > minimum, from the oracle's own parser."""
    from tests.reference import _parse_transactions

    counts: dict[str, int] = defaultdict(int)
    crossed: dict[str, int] = {}
    for record, txn in enumerate(_parse_transactions(stream.transactions)[0]):
        if txn is None:
            continue
        counts[txn.merchant] += 1
        if counts[txn.merchant] > minimum and txn.merchant not in crossed:
            crossed[txn.merchant] = record // CHUNK_ROWS
    return crossed


def write_run_dir(
    out: Path, stream: Stream, points: list[list[tuple]], batch_rows: int = 100
) -> list[list[tuple[str, str, str, str]]]:
    """A ``txnpipe run --out`` folder built from the oracle: chunks, manifest, detections."""
    for k, data in enumerate(stream.chunks):
        path = out / chunk_key(stream.source, k)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    records = sum(data.count(b"\n") - 1 for data in stream.chunks)
    (out / manifest_key(stream.source)).write_text(
        json.dumps({"chunks": len(stream.chunks), "records": records})
    )
    start = datetime(2026, 11, 29, 3, 35, tzinfo=UTC)
    rows = [
        RecordedDetection(
            chunk=k,
            pattern=_PATTERN_NUMBER[r[0]],
            merchant=r[3],
            customer=r[2],
            y_start=start + timedelta(seconds=7 * k),
            detected_at=start + timedelta(seconds=7 * k, milliseconds=5),
        )
        for k, point in enumerate(points)
        for r in point
    ]
    files = [rows[i : i + batch_rows] for i in range(0, len(rows), batch_rows)]
    for b, batch in enumerate(files):
        path = out / detections_key(stream.source, b)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(detections_csv(batch))
    return [[d.row()[2:] for d in batch] for batch in files]
