"""Mechanism Y's state behind the core's ``DetectorState`` seam: the weights, the arrivals,
and the sessions (each a transaction holding the source's row lock) that apply, flush and
merge."""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from txnpipe.core.layouts import Transaction
from txnpipe.core.ports import ObjectVersion, StreamProgress, UpgradeRun
from txnpipe.core.weights import WeightRows
from txnpipe.postgres.apply import PgApplySession
from txnpipe.postgres.connection import source_id
from txnpipe.postgres.escape import copy_text
from txnpipe.postgres.ingest import write_history
from txnpipe.postgres.outbox import PgFlushSession, PgUpgradeSession
from txnpipe.postgres.statements import statement


@dataclass(frozen=True)
class _Progress:
    stream: StreamProgress
    layout: str | None
    run: UpgradeRun | None
    landed: set[int]


@dataclass
class PgDetectorState:
    conn: psycopg.Connection
    # A second connection for ``stage``, used by the prefetch thread only; without one the
    # history is written inside each chunk's apply.
    staging: Callable[[], psycopg.Connection] | None = None

    def __post_init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._layouts: dict[str, tuple[int, bool]] = {}
        self._staged: dict[str, set[int]] = {}

    def stage(self, source: str, chunk: int, transactions: Sequence[Transaction]) -> None:
        if self.staging is None or not transactions:
            return
        conn = self.staging()
        if source not in self._layouts:
            row = conn.execute(statement("staged_layout"), {"source": source}).fetchone()
            if row is None or row[1] is None:
                return  # no weights loaded yet: the apply writes the history itself
            self._layouts[source] = (int(row[0]), row[1] == "banksim")
        sid, by_merchant = self._layouts[source]
        with conn.transaction():
            write_history(conn, sid, chunk, transactions, by_merchant)
        self._staged.setdefault(source, set()).add(chunk)

    def _sid(self, source: str) -> int:
        if source not in self._ids:
            self._ids[source] = source_id(self.conn, source)
        return self._ids[source]

    def ensure_source(self, source: str) -> bool:
        with self.conn.transaction():
            sid = {"sid": self._sid(source)}
            self.conn.execute(statement("ensure_detector_state"), sid)
            row = self.conn.execute(statement("weights_loaded"), sid).fetchone()
        return not (row and row[0])

    def load_weights(self, source: str, weights: WeightRows) -> None:
        """Stream the rows in, then keep each key's mean: memory stays flat however large."""
        with self.conn.transaction():
            sid = self._sid(source)
            row = self.conn.execute(statement("weights_loaded_locked"), {"sid": sid}).fetchone()
            if row and row[0]:
                return
            self.conn.execute(statement("create_weights_in"))
            with self.conn.cursor().copy(statement("copy_weights_in")) as copy:
                rows = iter(weights)
                while batch := list(itertools.islice(rows, 10_000)):  # memory stays flat
                    copy.write(copy_text(batch))
            self.conn.execute(statement("insert_weights"), {"sid": sid})
            self.conn.execute(statement("weights_done"), {
                "sid": sid, "layout": weights.layout, "rows": weights.rows,
                "skipped": weights.skipped})  # fmt: skip

    def importance_of(self, source: str) -> tuple[str, ObjectVersion] | None:
        row = self.conn.execute(statement("stream_importance"), {"source": source}).fetchone()
        return None if row is None else (row[0], ObjectVersion(row[1], row[2]))

    def record_arrivals(self, source: str, chunks: Sequence[int]) -> None:
        self.conn.execute(statement("record_arrivals"),
                          {"sid": self._sid(source), "chunks": sorted(set(chunks))})  # fmt: skip

    def progress_of(self, source: str) -> StreamProgress | None:
        row = self.conn.execute(statement("progress_of"), {"source": source}).fetchone()
        return StreamProgress(*row) if row is not None else None

    def live_sources(self, batch_rows: int) -> list[str]:
        rows = self.conn.execute(statement("live_sources"), {"batch_rows": batch_rows})
        return [name for (name,) in rows.fetchall()]

    def record_end(self, source: str, chunks: int, records: int) -> None:
        self.conn.execute(statement("record_end"),
                          {"sid": self._sid(source), "chunks": chunks, "records": records})  # fmt: skip

    def _progress(self, sid: int) -> _Progress:
        row = self.conn.execute(statement("progress_for_update"), {"sid": sid}).fetchone()
        if row is None:
            raise LookupError(f"source {sid} has no detector state")
        run = UpgradeRun(row[6], row[7], row[8]) if row[6] is not None else None
        return _Progress(StreamProgress(*row[:5]), row[5], run, set(row[9]))

    @contextmanager
    def apply_session(self, source: str) -> Iterator[PgApplySession]:
        with self.conn.transaction():
            sid = self._sid(source)
            p = self._progress(sid)
            staged = self._staged.setdefault(source, set())
            yield PgApplySession(self.conn, sid, p.stream, p.layout == "banksim", p.landed, staged)

    @contextmanager
    def flush_session(self, source: str) -> Iterator[PgFlushSession]:
        with self.conn.transaction():
            sid = self._sid(source)
            yield PgFlushSession(self.conn, sid, self._progress(sid).stream)

    @contextmanager
    def upgrade_session(self, source: str) -> Iterator[PgUpgradeSession]:
        with self.conn.transaction():
            sid = self._sid(source)
            p = self._progress(sid)
            yield PgUpgradeSession(self.conn, sid, p.stream, p.run)

    def sources_with_runs(self) -> list[str]:
        return [name for (name,) in self.conn.execute(statement("sources_with_runs")).fetchall()]
