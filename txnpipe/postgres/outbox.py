"""The detection outbox: rows numbered as they are recorded, written out in files of a fixed
slice of that sequence; and PatId1's batch runs merged into it at their first points."""
from __future__ import annotations

from dataclasses import dataclass, replace

import psycopg

from txnpipe.core.detections import Candidate, RecordedDetection
from txnpipe.core.ports import StreamProgress, UpgradeRun
from txnpipe.postgres.statements import statement

MERGE_ROWS = 10_000  # PatId1 candidates of a batch run recorded per statement


@dataclass
class PgFlushSession:
    conn: psycopg.Connection
    sid: int
    progress: StreamProgress

    def rows(self, start: int, stop: int) -> list[RecordedDetection]:
        cur = self.conn.execute(statement("detection_rows"),
                                {"sid": self.sid, "start": start, "stop": stop})  # fmt: skip
        return [RecordedDetection(*row) for row in cur.fetchall()]

    def mark_written(self, files_written: int) -> None:
        self.conn.execute(statement("mark_written"), {"sid": self.sid, "files": files_written})


@dataclass
class PgUpgradeSession:
    conn: psycopg.Connection
    sid: int
    progress: StreamProgress
    run: UpgradeRun | None

    def started(self, run: UpgradeRun) -> None:
        self.conn.execute(statement("upgrade_started"), {
            "sid": self.sid, "run": run.run_id, "first": run.first, "last": run.last})  # fmt: skip
        self.run = run

    def merge(self, run: UpgradeRun, candidates: list[Candidate], pattern: int) -> int:
        """Each key at its first point, in (chunk, merchant, customer) order, ``MERGE_ROWS``
        per statement: the numbers are those one statement over all of them gives, and no
        statement grows with the run."""
        first: dict[tuple[str, str], int] = {}
        for chunk, merchant, customer in candidates:
            if first.get((merchant, customer), chunk) >= chunk:
                first[merchant, customer] = chunk
        ordered = sorted((chunk, m, c) for (m, c), chunk in first.items())
        found = 0
        for start in range(0, max(1, len(ordered)), MERGE_ROWS):  # once even with none
            part = ordered[start : start + MERGE_ROWS]
            row = self.conn.execute(statement("merge_upgrades"), {
                "sid": self.sid,
                "pattern": pattern,
                "base": self.progress.detections + found,
                "last": run.last,
                "chunk": [c[0] for c in part],
                "merchant": [c[1] for c in part],
                "customer": [c[2] for c in part],
            }).fetchone()  # fmt: skip
            found += int(row[0]) if row else 0
        self.progress = replace(self.progress, detections=self.progress.detections + found,
                                upgrade_through=run.last)  # fmt: skip
        self.run = None
        return found
