"""The seams between the pure core and its adapters (S3, PostgreSQL).

Both mechanisms talk to storage only through these protocols, so the core can be driven
by moto and a real PostgreSQL in tests, by boto3 and RDS in Lambda, and by anything else
that keeps the same promises.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from txnpipe.detections import Detection
from txnpipe.layouts import Transaction
from txnpipe.settings import Settings
from txnpipe.weights import Weights

Fault = Callable[[str], None]


def no_fault(point: str) -> None:
    """The production fault hook: never fails. Chaos runs inject crashes here."""


class ObjectStore(Protocol):
    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, start: int, length: int) -> tuple[bytes, int]:
        """Bytes [start, start+length) and the object's total size."""
        ...

    def put(self, key: str, data: bytes) -> None: ...


@dataclass(frozen=True)
class Pointer:
    """Where the chunker stands in one source: the next chunk and its byte offset."""

    source: str
    input_key: str
    header: bytes
    started_at: datetime
    next_chunk: int
    next_offset: int
    records: int
    done: bool


class ChunkerState(Protocol):
    def writer_lock(self, source: str) -> AbstractContextManager[bool]:
        """Held for a whole tick; yields False when another writer has it."""
        ...

    def load(self, source: str) -> Pointer | None: ...

    def save(self, pointer: Pointer) -> None: ...


@dataclass(frozen=True)
class StreamProgress:
    """The detector's view of a source, read under its lock."""

    next_chunk: int
    total_chunks: int | None
    detections: int
    files_written: int

    @property
    def ended(self) -> bool:
        return self.total_chunks is not None and self.next_chunk >= self.total_chunks


class ApplySession(Protocol):
    progress: StreamProgress

    def arrivals(self) -> set[int]:
        """Chunks whose events have come in and that are not applied yet."""
        ...

    def apply(
        self,
        chunk: int,
        transactions: Sequence[Transaction],
        records: int,
        rejects: int,
        y_start: datetime,
        settings: Settings,
    ) -> int:
        """Ingest one chunk, update the aggregates, record new detections; returns their count."""
        ...


class FlushSession(Protocol):
    progress: StreamProgress

    def rows(self, start: int, stop: int) -> list[Detection]: ...

    def mark_written(self, files_written: int) -> None: ...


class DetectorState(Protocol):
    def ensure_source(self, source: str) -> bool:
        """Registers the source; True when its weights still have to be loaded."""
        ...

    def load_weights(self, source: str, weights: Weights) -> None: ...

    def record_arrival(self, source: str, chunk: int) -> None: ...

    def record_end(self, source: str, chunks: int, records: int) -> None: ...

    def apply_session(self, source: str) -> AbstractContextManager[ApplySession]: ...

    def flush_session(self, source: str) -> AbstractContextManager[FlushSession]: ...
