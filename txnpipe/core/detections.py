"""Detections (SPEC 4.1, 4.3): one family of types for every engine, the outbox and the report.

- ``Candidate``: PatId1 holds for a pair at an evaluation point (a batch run's raw output,
  before emit-once keeps the first point of each key);
- ``Detection``: a pattern's key at its first evaluation point, what every engine finds;
- ``RecordedDetection``: a detection with the times the outbox recorded, as a file holds it.

Emit-once, the SPEC 4.3 order and the cut into files of ``detection_batch_rows`` are here,
so that every engine's output goes through exactly the same last step.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from txnpipe.core.rules import CATALOGUE, Catalogue

IST = timezone(timedelta(hours=5, minutes=30))
HEADER = ("YStartTime", "detectionTime", "patternId", "ActionType", "customerName", "MerchantId")
FileRow = tuple[str, str, str, str]
"""(patternId, ActionType, customerName, MerchantId): a detection as a file shows it."""


class Candidate(NamedTuple):
    """PatId1 holds for (merchant, customer) at evaluation point ``chunk``."""

    chunk: int
    merchant: str
    customer: str


class Detection(NamedTuple):
    """A detection at its first evaluation point; ``customer`` is ``""`` for a merchant rule."""

    chunk: int
    pattern: int
    merchant: str
    customer: str

    def order(self) -> tuple[int, int, bytes, bytes]:
        """Evaluation point, pattern, merchant, customer; UTF-8 bytes sort as code points."""
        return (self.chunk, self.pattern, self.merchant.encode(), self.customer.encode())

    def file_row(self, catalogue: Catalogue = CATALOGUE) -> FileRow:
        pattern_id, action = catalogue.label(self.pattern)
        return (pattern_id, action, self.customer, self.merchant)


@dataclass(frozen=True)
class RecordedDetection:
    """A detection with its times: ``y_start``, when the detector began applying its chunk,
    and ``detected_at``, when it was recorded. ``chunk`` is None in a report where no
    chunk of the run matches its YStartTime."""

    chunk: int | None
    pattern: int
    merchant: str
    customer: str
    y_start: datetime
    detected_at: datetime

    def row(self, catalogue: Catalogue = CATALOGUE) -> tuple[str, str, str, str, str, str]:
        pattern_id, action = catalogue.label(self.pattern)
        return (ist_iso(self.y_start), ist_iso(self.detected_at), pattern_id, action,
                self.customer, self.merchant)  # fmt: skip


def ist_iso(moment: datetime) -> str:
    """ISO 8601 in IST with milliseconds, e.g. ``2026-11-29T09:05:03.123+05:30``."""
    return moment.astimezone(IST).isoformat(timespec="milliseconds")


def detections_csv(rows: Iterable[RecordedDetection], catalogue: Catalogue = CATALOGUE) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(d.row(catalogue) for d in rows)
    return out.getvalue().encode("utf-8")


def file_bounds(index: int, batch_rows: int) -> tuple[int, int]:
    """Sequence numbers [start, stop) of detection file ``index``."""
    return index * batch_rows, (index + 1) * batch_rows


def files_due(total_rows: int, files_written: int, batch_rows: int, ended: bool) -> list[int]:
    """Files that may be written now: every full one, and the partial last one at the end."""
    full = total_rows // batch_rows
    due = list(range(files_written, full))
    if ended and total_rows % batch_rows and files_written <= full:
        due.append(full)
    return due


def first_points(candidates: Iterable[tuple[int, str, str]]) -> dict[tuple[str, str], int]:
    """(merchant, customer) -> the earliest point among ``candidates`` (emit-once).

    Candidates of several chunk ranges can be passed together: the union of per-range first
    points, reduced again, is the first point over the ranges' union.
    """
    first: dict[tuple[str, str], int] = {}
    for chunk, merchant, customer in candidates:
        key = (merchant, customer)
        if key not in first or chunk < first[key]:
            first[key] = chunk
    return first


def first_detections(candidates: Iterable[tuple[int, str, str]],
                     pattern: int = 1) -> list[Detection]:  # fmt: skip
    """PatId1's detections: each candidate key at its first point."""
    return [Detection(k, pattern, m, c) for (m, c), k in first_points(candidates).items()]


def ordered(rows: Iterable[Detection]) -> list[Detection]:
    return sorted(rows, key=Detection.order)


def in_files(rows: Sequence[Detection], batch_rows: int,
             catalogue: Catalogue = CATALOGUE) -> list[list[FileRow]]:  # fmt: skip
    """The detection files' rows, in order: full files of ``batch_rows``, then the rest."""
    flat = [r.file_row(catalogue) for r in ordered(rows)]
    return [flat[slice(*file_bounds(i, batch_rows))]
            for i in range(-(-len(flat) // batch_rows))]  # fmt: skip
