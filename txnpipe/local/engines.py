"""Local PatId1 batch engines: DuckDB in-process, or PySpark in local mode.

Each run works in the background like a Glue job would, so the detector keeps applying
chunks meanwhile and the next run coalesces every point that became pending.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from txnpipe.core.keys import chunk_key
from txnpipe.core.ports import Candidate, ObjectStore, UpgradeRun
from txnpipe.core.settings import Settings
from txnpipe.core.weights import Weights, parse_weights

ENGINES = ("inline", "duckdb", "spark")


@lru_cache(maxsize=1)
def _weights(importance: bytes) -> Weights:
    """One stream's weights, parsed once for all its runs."""
    return parse_weights(importance)


def _duckdb(chunks: list[tuple[int, bytes]], importance: bytes, settings: Settings,
            first: int, last: int) -> list[Candidate]:  # fmt: skip
    from txnpipe.batch import duckdb_engine
    from txnpipe.batch.frames import transactions_table

    table = transactions_table(chunks, _weights(importance), settings.chunk_rows)
    return [tuple(c) for c in duckdb_engine.upgrade_candidates(table, settings, first, last)]


def _spark(chunks: list[tuple[int, bytes]], importance: bytes, settings: Settings,
           first: int, last: int) -> list[Candidate]:  # fmt: skip
    from txnpipe.batch import spark_engine

    spark = spark_engine.local_session("local[2]")
    frame = spark_engine.transactions_df(spark, chunks, importance, settings.chunk_rows,
                                         partitions=max(1, min(8, len(chunks) // 50)))  # fmt: skip
    found = spark_engine.upgrade_candidates(spark, frame, settings, first, last).collect()
    return [(int(r["chunk"]), r["merchant"], r["customer"]) for r in found]


_COMPUTE = {"duckdb": _duckdb, "spark": _spark}


@dataclass
class LocalUpgradeEngine:
    """Runs one batch computation at a time on a worker thread, reading chunks from S3."""

    name: str
    store: ObjectStore
    settings: Settings
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1))
    _runs: dict[str, Future[list[Candidate]]] = field(default_factory=dict)
    _ids: Any = field(default_factory=itertools.count)
    _importance: dict[str, bytes] = field(default_factory=dict)  # by key

    def start(self, source: str, first: int, last: int, importance_key: str) -> UpgradeRun:
        run_id = f"{self.name}-{next(self._ids)}"
        self._runs[run_id] = self._pool.submit(self._compute, source, first, last,
                                               importance_key)  # fmt: skip
        return UpgradeRun(run_id, first, last)

    def result(self, source: str, run: UpgradeRun) -> list[Candidate] | None:
        future = self._runs.get(run.run_id)
        if future is None:  # lost with a previous process: run it again
            raise RuntimeError(f"run {run.run_id} is unknown to this process")
        if not future.done():
            return None
        del self._runs[run.run_id]
        return future.result()

    def _compute(self, source: str, first: int, last: int, importance_key: str) -> list[Candidate]:
        if importance_key not in self._importance:
            self._importance[importance_key] = self.store.get(importance_key)
        chunks = [(k, self.store.get(chunk_key(source, k))) for k in range(last + 1)]
        compute: Callable[..., list[Candidate]] = _COMPUTE[self.name]
        return compute(chunks, self._importance[importance_key], self.settings, first, last)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
