"""Detection rows: their order, their files of exactly N rows, their CSV (SPEC 4.3)."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from txnpipe.rules import PATTERNS

IST = timezone(timedelta(hours=5, minutes=30))
HEADER = ("YStartTime", "detectionTime", "patternId", "ActionType", "customerName", "MerchantId")


@dataclass(frozen=True)
class Detection:
    chunk: int
    pattern: int
    merchant: str
    customer: str
    y_start: datetime
    detected_at: datetime

    def sort_key(self) -> tuple[int, int, bytes, bytes]:
        """Evaluation point, pattern, merchant, customer; UTF-8 bytes order as code points."""
        return (self.chunk, self.pattern, self.merchant.encode(), self.customer.encode())

    def row(self) -> tuple[str, str, str, str, str, str]:
        pattern_id, action = PATTERNS[self.pattern]
        return (
            ist_iso(self.y_start),
            ist_iso(self.detected_at),
            pattern_id,
            action,
            self.customer,
            self.merchant,
        )


def ist_iso(moment: datetime) -> str:
    """ISO 8601 in IST with milliseconds, e.g. ``2026-11-29T09:05:03.123+05:30``."""
    return moment.astimezone(IST).isoformat(timespec="milliseconds")


def detections_csv(rows: Iterable[Detection]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(d.row() for d in rows)
    return out.getvalue().encode("utf-8")


def batch_bounds(index: int, batch_rows: int) -> tuple[int, int]:
    """Sequence numbers [start, stop) of detection file ``index``."""
    return index * batch_rows, (index + 1) * batch_rows


def files_due(total_rows: int, files_written: int, batch_rows: int, ended: bool) -> list[int]:
    """Files that may be written now: every full one, and the partial last one at the end."""
    full = total_rows // batch_rows
    due = list(range(files_written, full))
    if ended and total_rows % batch_rows and files_written <= full:
        due.append(full)
    return due


def batches(rows: Sequence[Detection], batch_rows: int) -> list[list[Detection]]:
    ordered = sorted(rows, key=Detection.sort_key)
    return [list(ordered[i : i + batch_rows]) for i in range(0, len(ordered), batch_rows)]
