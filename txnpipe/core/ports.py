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

from txnpipe.core.detections import Candidate, RecordedDetection
from txnpipe.core.layouts import Transaction
from txnpipe.core.rules import CATALOGUE, Catalogue
from txnpipe.core.settings import Settings
from txnpipe.core.weights import WeightRows

Fault = Callable[[str], None]


def no_fault(point: str) -> None:
    """The production fault hook: never fails. Chaos runs inject crashes here."""


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an object: its S3 version id where the bucket keeps versions, and its
    ETag. A stream pins the version of its input when it starts, so that the object put
    again while the stream runs never changes (or resets) it."""

    version_id: str | None
    etag: str


class InputChanged(Exception):
    """The pinned version of an object is gone (an unversioned bucket's object was replaced)."""


class ObjectStore(Protocol):
    def get(self, key: str, version: ObjectVersion | None = None) -> bytes:
        """The object (``version`` of it if given; raises ``InputChanged`` when that version
        is no longer there)."""
        ...

    def get_range(
        self, key: str, start: int, length: int, version: ObjectVersion | None = None
    ) -> tuple[bytes, int]:
        """Bytes [start, start+length) and the object's total size; of ``version`` if given
        (raises ``InputChanged`` when that version is no longer there)."""
        ...

    def version(self, key: str) -> ObjectVersion:
        """The object's current version (raises ``KeyError`` when there is none)."""
        ...

    def latest(self, prefix: str) -> tuple[str, ObjectVersion] | None:
        """The object last put under ``prefix`` and its version (None: there is none)."""
        ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, in order."""
        ...

    def list_keys(self, prefix: str, start_after: str = "", limit: int = 1000) -> list[str]:
        """Up to ``limit`` keys under ``prefix`` that sort after ``start_after``, in order."""
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
    input_version: ObjectVersion | None = None  # the input as it was when the stream started


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
    upgrade_through: int  # PatId1 evaluated for every point up to this chunk (-1: none)

    @property
    def ended(self) -> bool:
        """Manifest seen, every chunk applied and every point's PatId1 known."""
        return (
            self.total_chunks is not None
            and self.next_chunk >= self.total_chunks
            and self.upgrade_through >= self.total_chunks - 1
        )


@dataclass(frozen=True)
class UpgradeRun:
    """A batch run computing PatId1 for the evaluation points ``first..last``."""

    run_id: str
    first: int
    last: int




class UpgradeEngine(Protocol):
    """A batch engine for PatId1 (Glue PySpark on AWS; DuckDB or local Spark locally)."""

    def start(self, source: str, first: int, last: int, importance_key: str) -> UpgradeRun | None:
        """Start computing PatId1 candidates for points first..last, with the stream's
        importance file (the current version of it: a batch engine reads it again, where
        the inline detector weighs with what it loaded); returns the run (a run
        of this range already in flight, when one is), or None when the engine is busy with
        another and a later call must try again."""
        ...

    def result(self, source: str, run: UpgradeRun) -> list[Candidate] | None:
        """The run's candidates once it has finished, None while it runs; raises if it failed."""
        ...


@dataclass(frozen=True)
class FileWritten:
    """A detection file was put: what consumers of the detector's events are told.
    Delivered at least once (a retried write puts it again, the same), so a consumer must
    be idempotent on ``key``."""

    source: str
    key: str
    rows: int
    by_pattern: dict[str, int]  # PatIdN -> rows of that pattern in the file


class DetectionEvents(Protocol):
    def file_written(self, event: FileWritten) -> None: ...


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
        upgrade_inline: bool = True,
        rules: Catalogue = CATALOGUE,
    ) -> int:
        """Ingest one chunk, update the aggregates, record the new detections of ``rules``;
        returns their count. With ``upgrade_inline`` false, the percentile rule (PatId1) is
        left to a batch engine (``UpgradeSession``)."""
        ...


class UpgradeSession(Protocol):
    progress: StreamProgress
    run: UpgradeRun | None

    def started(self, run: UpgradeRun) -> None: ...

    def merge(self, run: UpgradeRun, candidates: list[Candidate], pattern: int) -> int:
        """Record the first-time candidates as detections of ``pattern`` (PatId1); returns
        how many."""
        ...


class FlushSession(Protocol):
    progress: StreamProgress

    def rows(self, start: int, stop: int) -> list[RecordedDetection]: ...

    def mark_written(self, files_written: int) -> None: ...


class DetectorState(Protocol):
    def ensure_source(self, source: str) -> bool:
        """Registers the source; True when its weights still have to be loaded."""
        ...

    def importance_of(self, source: str) -> tuple[str, ObjectVersion] | None:
        """The importance file (and its version) the stream was registered with."""
        ...

    def load_weights(self, source: str, weights: WeightRows) -> None: ...

    def record_arrivals(self, source: str, chunks: Sequence[int]) -> None: ...

    def stage(self, source: str, chunk: int, transactions: Sequence[Transaction]) -> None:
        """Write a chunk's accepted records to the history ahead of its apply, from the
        thread that prefetches it; idempotent, and a no-op for a store that cannot."""
        ...

    def record_end(self, source: str, chunks: int, records: int) -> None: ...

    def progress_of(self, source: str) -> StreamProgress | None:
        """Where the source stands (read without its lock); None for a source never seen."""
        ...

    def live_sources(self, batch_rows: int) -> list[str]:
        """Sources whose stream has not ended or still has detection files to write."""
        ...

    def apply_session(self, source: str) -> AbstractContextManager[ApplySession]: ...

    def flush_session(self, source: str) -> AbstractContextManager[FlushSession]: ...

    def upgrade_session(self, source: str) -> AbstractContextManager[UpgradeSession]: ...

    def sources_with_runs(self) -> list[str]:
        """Sources whose PatId1 batch run is in flight (a Glue completion names none)."""
        ...
