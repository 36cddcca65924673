"""Streams as data: each object put under the transactions prefix becomes a stream.

A stream is registered from its input object's put event, pinned to that object's version
and to the importance file present at that moment (with its version), so that a rerun reads
exactly what the first run read. A put of a name that is already a stream is refused and
recorded, and changes nothing: only an explicit restart starts a stream again. These are
the decisions; ``StreamRegistry`` is where they are kept.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Protocol

from txnpipe.core.detections import files_due
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.keys import source_name
from txnpipe.core.ports import ObjectStore, ObjectVersion, StreamProgress

DEFAULT_INPUTS_PREFIX = "inputs/"
# The inputs prefix's two folders: a file's folder says what it is, and each function may
# read only its own.
TRANSACTIONS_SUBPREFIX = "transactions/"
IMPORTANCE_SUBPREFIX = "importance/"


@dataclass(frozen=True)
class InputPrefixes:
    """Where a deployment's inputs go (``inputs/`` unless the stack says otherwise)."""

    root: str = DEFAULT_INPUTS_PREFIX

    @property
    def transactions(self) -> str:
        return self.root + TRANSACTIONS_SUBPREFIX

    @property
    def importance(self) -> str:
        return self.root + IMPORTANCE_SUBPREFIX


class Status(str, Enum):
    """What the registry records. "Ended" is not recorded: a live stream has ended when its
    detector says so (``StreamProgress.ended``)."""

    LIVE = "live"
    FAILED = "failed"
    PURGED = "purged"


@dataclass(frozen=True)
class Stream:
    """One registered stream: the input it reads and the importance file it weighs with."""

    source: str
    input_key: str
    input_version: ObjectVersion | None  # None: the input as it is when the stream starts
    importance_key: str | None
    importance_version: ObjectVersion | None
    status: Status = Status.LIVE
    error: str | None = None  # why it failed
    registered_at: datetime | None = None
    restarts: int = 0


@dataclass(frozen=True)
class Refusal:
    """A put that changed nothing, and why."""

    source: str
    input_key: str
    input_version: ObjectVersion | None
    reason: str


class StreamRegistry(Protocol):
    def stream(self, source: str) -> Stream | None: ...

    def register(self, stream: Stream) -> bool:
        """Record a new stream; False (and nothing changed) when the name is one already."""
        ...

    def refuse(self, refusal: Refusal) -> None: ...

    def fail(self, source: str, reason: str) -> None:
        """The stream stops for good (until restarted), with its reason."""
        ...

    def chunking(self, sources: Sequence[str] | None = None) -> list[Stream]:
        """Live streams the chunker has not finished, by source (of ``sources`` if given)."""
        ...

    def names(self) -> set[str]:
        """Every registered stream's source."""
        ...


@dataclass(frozen=True)
class Registration:
    """What a put under the transactions prefix did."""

    source: str
    outcome: str  # "registered", "repeated" (the same object's event again), "refused"
    stream: Stream | None = None
    reason: str | None = None


def is_transactions_key(key: str, prefixes: InputPrefixes) -> bool:
    return key.startswith(prefixes.transactions) and not key.endswith("/")


def is_importance_key(key: str, prefixes: InputPrefixes) -> bool:
    return key.startswith(prefixes.importance) and not key.endswith("/")


def _same(a: ObjectVersion | None, b: ObjectVersion | None) -> bool:
    if a is None or b is None:
        return False
    if a.version_id is not None and b.version_id is not None:
        return a.version_id == b.version_id
    return a.etag == b.etag


def register_input(
    store: ObjectStore,
    registry: StreamRegistry,
    key: str,
    version: ObjectVersion | None,
    prefixes: InputPrefixes,
    restarts: int = 0,
) -> Registration:
    """A transactions object was put: register its stream, or refuse the put.

    ``version`` is the one the put event names (S3 delivers an event at least once and
    possibly late, so the object may have been replaced since); without one, the object's
    current version. The importance file is the newest object under the importance prefix
    now: a stream without one is registered as failed, so that the reason is shown.
    """
    name = key.rsplit("/", 1)[-1]
    try:
        source = source_name(name)
    except TxnpipeError as exc:
        registry.refuse(Refusal(name, key, version, str(exc)))
        return Registration(name, "refused", reason=str(exc))
    if version is None:
        try:
            version = store.version(key)
        except KeyError:
            reason = f"{key!r} was deleted before its stream could start"
            registry.refuse(Refusal(source, key, None, reason))
            return Registration(source, "refused", reason=reason)
    existing = registry.stream(source)
    if existing is None:
        importance = store.latest(prefixes.importance)
        stream = Stream(source, key, version, *(importance or (None, None)), restarts=restarts)
        if importance is None:
            reason = f"no importance file under {prefixes.importance!r}"
            stream = replace(stream, status=Status.FAILED, error=reason)
        if registry.register(stream):
            return Registration(source, "registered", stream)
        existing = registry.stream(source)  # registered meanwhile by a concurrent event
    if existing is not None and existing.input_key == key and _same(existing.input_version, version):
        return Registration(source, "repeated", existing)
    status = existing.status.value if existing else "live"
    reason = (f"{key!r} names the stream {source!r}, which exists ({status}): a new object "
              "under that name changes nothing; once the stream has ended, `txnpipe restart --source "
              f"{source}` starts it again from the object there")  # fmt: skip
    registry.refuse(Refusal(source, key, version, reason))
    return Registration(source, "refused", existing, reason)



def discover_inputs(store: ObjectStore, registry: StreamRegistry,
                    prefixes: InputPrefixes) -> list[Registration]:  # fmt: skip
    """Register the streams of inputs whose put event never came (S3 may lose one, and the
    chunker's async events are dropped after a minute): every object under the transactions
    prefix whose name is a valid source that is no stream yet. Names that are streams, and
    invalid names, are left alone: only a put's own event records a refusal."""
    known = registry.names()
    found = []
    for key in store.keys(prefixes.transactions):
        try:
            source = source_name(key.rsplit("/", 1)[-1])
        except TxnpipeError:
            continue
        if is_transactions_key(key, prefixes) and source not in known:
            found.append(register_input(store, registry, key, None, prefixes))
            known.add(source)
    return found


PURGED_TABLES = ("history", "pairs", "merchants", "customers", "weights", "arrivals")


@dataclass(frozen=True)
class Purge:
    """What ``purge`` removed of a stream: rows by table (``PURGED_TABLES``)."""

    source: str
    removed: dict[str, int]
    already: bool = False  # purged before: nothing left to remove


def live_refusal(source: str, stream: Stream | None, progress: StreamProgress | None,
                 batch_rows: int, action: str) -> str | None:  # fmt: skip
    """Why the stream may not be purged or restarted (``action``) now; None when it may.
    Only a stream that has ended (every chunk applied, every point's PatId1 known, its last
    file written), failed, or been purged may be: a live stream's history is what its next
    chunk is detected on, and a restart is never a silent reset."""
    if stream is None and progress is None:
        return f"there is no stream named {source!r}"
    if stream is not None and stream.status is not Status.LIVE:
        return None
    if progress is not None and progress.ended and not files_due(
        progress.detections, progress.files_written, batch_rows, True
    ):
        return None
    applied = "no chunk applied yet"
    if progress is not None:
        total = "" if progress.total_chunks is None else f" of {progress.total_chunks}"
        applied = f"{progress.next_chunk}{total} chunks applied"
    return f"stream {source!r} is live ({applied}): only an ended stream can be {action}"
