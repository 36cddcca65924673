"""Emit-once and output order (SPEC 4.1, 4.3), independent of the engine that found the rows.

Engines report when a condition holds; this module decides what is emitted: the first
evaluation point per key, ordered by point, pattern, merchant, customer (code points), cut
into files of ``detection_batch_rows``. Keeping it engine-free means DuckDB and Spark
results are compared after exactly the same final step.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from txnpipe.rules import PATTERNS

FileRow = tuple[str, str, str, str]
"""(patternId, ActionType, customerName, MerchantId): a detection as a file shows it."""


class Candidate(NamedTuple):
    """PatId1 holds for (merchant, customer) at evaluation point ``chunk``."""

    chunk: int
    merchant: str
    customer: str


class DetectionRow(NamedTuple):
    """A detection at its first evaluation point; ``customer`` is ``""`` for PatId3."""

    chunk: int
    pattern: int
    merchant: str
    customer: str

    def order(self) -> tuple[int, int, bytes, bytes]:
        """SPEC 4.3 order; UTF-8 bytes sort as code points do."""
        return (self.chunk, self.pattern, self.merchant.encode(), self.customer.encode())

    def file_row(self) -> FileRow:
        pattern_id, action = PATTERNS[self.pattern]
        return (pattern_id, action, self.customer, self.merchant)


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


def upgrade_rows(candidates: Iterable[tuple[int, str, str]]) -> list[DetectionRow]:
    return [DetectionRow(k, 1, m, c) for (m, c), k in first_points(candidates).items()]


def ordered(rows: Iterable[DetectionRow]) -> list[DetectionRow]:
    return sorted(rows, key=DetectionRow.order)


def detection_files(rows: Iterable[DetectionRow], batch_rows: int) -> list[list[FileRow]]:
    """The detection files' rows, in order: full files of ``batch_rows``, then the rest."""
    flat = [r.file_row() for r in ordered(rows)]
    return [flat[i : i + batch_rows] for i in range(0, len(flat), batch_rows)]
