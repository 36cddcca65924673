"""Applying one chunk: its aggregates updated, every rule of the catalogue evaluated for what
the chunk touched, its detections, log row and progress recorded; one transaction."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from txnpipe.core.layouts import Transaction
from txnpipe.core.ports import StreamProgress
from txnpipe.core.rules import CATALOGUE, Catalogue
from txnpipe.core.rules.percentiles import EPS
from txnpipe.core.settings import Settings
from txnpipe.postgres import ranks
from txnpipe.postgres.aggregate import aggregate_parameters, aggregate_sql
from txnpipe.postgres.ingest import write_history
from txnpipe.postgres.statements import statement


@dataclass
class PgApplySession:
    conn: psycopg.Connection
    sid: int
    progress: StreamProgress
    by_merchant: bool
    landed: set[int]
    staged: set[int]  # chunks whose history this detector's prefetch thread has written

    def arrivals(self) -> set[int]:
        return self.landed

    def apply(
        self,
        chunk: int,
        transactions: Sequence[Transaction],
        records: int,
        rejects: int,
        y_start: datetime,
        settings: Settings,
        upgrade_inline: bool = True,
        rules: Catalogue = CATALOGUE,
    ) -> int:
        lo = chunk * settings.chunk_rows
        params = {"sid": self.sid, "chunk": chunk, "lo": lo, "hi": lo + settings.chunk_rows}
        if chunk in self.staged:
            self.staged.discard(chunk)
        else:
            write_history(self.conn, self.sid, chunk, transactions, self.by_merchant)
        cur = self.conn.cursor()
        found = cur.execute(aggregate_sql(rules), {
            **params, **aggregate_parameters(rules, settings), "inline": upgrade_inline,
        }).fetchall()  # fmt: skip
        upgrade = rules.percentile_rule
        percentile = upgrade.pattern if upgrade is not None else None
        others = [(pattern, m, c) for pattern, m, c, *_ in found if pattern != percentile]
        evaluations: list[ranks.Evaluation] = []
        if upgrade is not None and upgrade_inline:  # else PatId1 is left to a batch engine
            touched = [ranks.Touched(*row) for row in found if row[0] == percentile]
            evaluations = ranks.evaluate(self.conn, self.sid, touched, upgrade, settings)
            others += [(upgrade.pattern, e.merchant, c) for e in evaluations for c in e.touched]
        row = cur.execute(statement("record_detections"), {
            **params,
            "eps": EPS,
            "percentile_pattern": percentile or 0,
            **_evaluated(evaluations),
            "pattern": [r[0] for r in others],
            "merchant": [r[1] for r in others],
            "customer": [r[2] for r in others],
            "base": self.progress.detections,
            "y_start": y_start,
            "records": records,
            "rejects": rejects,
            "inline": upgrade_inline,
        }).fetchone()  # fmt: skip
        return int(row[0]) if row else 0


def _evaluated(evaluations: list[ranks.Evaluation]) -> dict[str, list[object]]:
    """PatId1's thresholds and cursors per merchant, as the statement's arrays."""
    return {
        "upgrade_merchants": [e.merchant for e in evaluations],
        "min_n": [e.min_count for e in evaluations],
        "tw": [e.weight_threshold for e in evaluations],
        "last_min_n": [e.last_min_count for e in evaluations],
        "last_tw": [e.last_weight_threshold for e in evaluations],
        "floor": [e.floor for e in evaluations],
        "cursor_w": [e.weight_cursor.key for e in evaluations],
        "cursor_customer": [e.weight_cursor.customer for e in evaluations],
        "cursor_below": [e.weight_cursor.rank for e in evaluations],
        "count_cursor_n": [e.count_cursor.key for e in evaluations],
        "count_cursor_customer": [e.count_cursor.customer for e in evaluations],
        "count_cursor_above": [e.count_cursor.rank for e in evaluations],
    }
