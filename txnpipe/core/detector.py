"""Mechanism Y: apply chunks in order, exactly once, and write detections in full files.

Events only record that a chunk has landed; whoever holds the source's lock then applies
every landed chunk that is next in line. So duplicates are no-ops, an early chunk waits
for its predecessors, and a crash anywhere leaves work that the next event (or retry)
finishes. Detection rows are numbered when recorded, so a file is a fixed slice of that
sequence and a retried write rewrites the same key with the same rows.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from txnpipe.core.chunkparse import ParsedChunk, parse_chunk, rejects_csv
from txnpipe.core.detections import RecordedDetection, detections_csv, file_bounds, files_due
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.keys import (
    ChunkRef,
    chunk_key,
    chunks_folder,
    detections_key,
    manifest_key,
    parse_chunk_key,
    rejects_key,
)
from txnpipe.core.ports import (
    DetectionEvents,
    DetectorState,
    Fault,
    FileWritten,
    ObjectStore,
    ObjectVersion,
    UpgradeEngine,
    UpgradeRun,
    no_fault,
)
from txnpipe.core.rules import CATALOGUE, Catalogue
from txnpipe.core.settings import Settings
from txnpipe.core.weights import weight_rows


@dataclass
class DetectorReport:
    applied: list[tuple[str, int]] = field(default_factory=list)
    records: int = 0
    rejects: int = 0
    detections: int = 0
    files: list[str] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)
    upgrade_runs: list[UpgradeRun] = field(default_factory=list)
    upgrade_failures: list[str] = field(default_factory=list)
    # source -> (importance rows read, rows skipped), for the weights this invocation loaded
    weights_loaded: dict[str, tuple[int, int]] = field(default_factory=dict)
    # chunks (and manifests) whose events never came, found in the store instead
    recovered: list[tuple[str, int | None]] = field(default_factory=list)


_LOOKAHEAD = 2  # chunks read and staged ahead of the one being applied


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Detector:
    store: ObjectStore
    state: DetectorState
    settings: Settings
    # The importance file of a stream not registered from an input's put (a stream that was
    # reads the one it was registered with)
    importance_key: str | None = None
    fault: Fault = no_fault
    clock: Callable[[], datetime] = _utcnow
    upgrade_engine: UpgradeEngine | None = None  # None: PatId1 evaluated inline per chunk
    rules: Catalogue = CATALOGUE  # the patterns evaluated (SPEC 4.2, or extended)
    events: DetectionEvents | None = None  # told of each detection file, after it is put

    def handle(self, refs: Iterable[ChunkRef]) -> DetectorReport:
        """Record what landed, then apply and flush for every source the event touched."""
        report = DetectorReport()
        landed: dict[str, list[int]] = {}
        for ref in refs:
            if ref.source not in landed:
                landed[ref.source] = []
                self.prepare(ref.source, report)
            if ref.chunk is None:
                self._record_manifest(ref.source)
            else:
                landed[ref.source].append(ref.chunk)
        for source, chunks in sorted(landed.items()):  # one global lock order
            self.state.record_arrivals(source, chunks)
        for source in sorted(landed):
            self._catch_up(source, report, probe=False)
        return report

    def sweep(self, sources: Iterable[str]) -> DetectorReport:
        """Catch up without any event: S3 may lose an event, and Glue's state changes are
        best effort. For each stream that has not ended, look in the store for landed chunks
        and its manifest, merge a finished batch run, and write the files that are due.
        Sources never seen before (every event of theirs lost) are registered here."""
        report = DetectorReport()
        for source in sorted(set(sources)):
            progress = self.state.progress_of(source)
            batch = self.settings.detection_batch_rows
            if progress is not None and progress.ended and not files_due(
                progress.detections, progress.files_written, batch, True
            ):
                continue
            self.prepare(source, report)
            if (progress is None or progress.total_chunks is None) and self.store.exists(
                manifest_key(source)
            ):
                self._record_manifest(source)
                report.recovered.append((source, None))
            self._catch_up(source, report, probe=True)
        return report

    def _catch_up(self, source: str, report: DetectorReport, probe: bool) -> None:
        self.drain(source, report, probe)
        self.advance_upgrade(source, report)
        self.flush(source, report)

    def prepare(self, source: str, report: DetectorReport | None = None) -> None:
        """Register the source and load its weights, once. The first event does it; a local
        run does it on the detector's thread as it starts, while the chunker starts too."""
        if self.state.ensure_source(source):
            rows = weight_rows(self.store.get(*self.importance_of(source)))
            self.state.load_weights(source, rows)
            if report is not None:
                report.weights_loaded[source] = (rows.rows, rows.skipped)

    def importance_of(self, source: str) -> tuple[str, ObjectVersion | None]:
        """The stream's importance file: the one it was registered with (and that version of
        it), else the detector's own."""
        pinned = self.state.importance_of(source)
        if pinned is not None:
            return pinned
        if self.importance_key is None:
            raise TxnpipeError(f"stream {source!r} has no importance file: put one under "
                               "inputs/importance/ and restart the stream")  # fmt: skip
        return self.importance_key, None

    def poll_upgrades(self) -> DetectorReport:
        """A batch run finished somewhere (Glue's state change names no source): merge it."""
        report = DetectorReport()
        for source in self.state.sources_with_runs():
            self.advance_upgrade(source, report)
            self.flush(source, report)
        return report

    def advance_upgrade(self, source: str, report: DetectorReport) -> None:
        """Merge a finished PatId1 run, then start one for every point still pending.

        One run at a time per source: a run takes far longer than a chunk's 7 seconds, so
        the points that land meanwhile are coalesced into the next run.
        """
        if self.upgrade_engine is None:
            return
        with self.state.upgrade_session(source) as session:
            run = session.run
            if run is not None:
                try:
                    candidates = self.upgrade_engine.result(source, run)
                # a failed run is started again, nothing is lost
                except Exception as exc:  # noqa: BLE001
                    report.upgrade_failures.append(f"{run.run_id}: {exc}")
                    candidates, session.run = None, None
                if candidates is not None:
                    upgrade = self.rules.percentile_rule
                    assert upgrade is not None, "a batch engine computes the percentile rule"
                    report.detections += session.merge(run, candidates, upgrade.pattern)
                    report.upgrade_runs.append(run)
            first = session.progress.upgrade_through + 1
            last = session.progress.next_chunk - 1
            if session.run is None and first <= last:
                started = self.upgrade_engine.start(source, first, last,
                                                    self.importance_of(source)[0])  # fmt: skip
                if started is not None:  # None: the engine is busy; a later call starts it
                    session.started(started)

    def _file_written(self, source: str, key: str, rows: list[RecordedDetection]) -> FileWritten:
        counts = Counter(row.pattern for row in rows)
        return FileWritten(source, key, len(rows),
                           {self.rules.label(p)[0]: counts[p] for p in self.rules.patterns})  # fmt: skip

    def _record_manifest(self, source: str) -> None:
        try:
            manifest = json.loads(self.store.get(manifest_key(source)))
            chunks, records = int(manifest["chunks"]), int(manifest["records"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TxnpipeError(f"manifest of {source!r} is malformed: {exc}") from None
        self.state.record_end(source, chunks, records)

    def drain(self, source: str, report: DetectorReport, probe: bool = False) -> None:
        """Apply every landed chunk that is next in line, one transaction each.

        While PostgreSQL applies chunk k, the next landed chunks are fetched and parsed on
        one thread and staged into the history on another, in chunk order, so S3, parsing
        and the history's insert overlap the database work that must follow chunk order.

        When the next chunk's event has not come in although a later one has (or ``probe``
        asks, in a sweep), the chunks that landed are looked up in the store: one LIST from
        the applied pointer, so a lost event stalls nothing.
        """
        with ThreadPoolExecutor(1) as reading, ThreadPoolExecutor(1) as staging:

            def load(chunk: int) -> Future[ParsedChunk]:
                read = reading.submit(self._read, source, chunk)
                return staging.submit(self._stage, source, chunk, read)

            ahead: dict[int, Future[ParsedChunk]] = {}
            while True:
                recovered: list[int] = []
                with self.state.apply_session(source) as session:
                    chunk = session.progress.next_chunk
                    landed = session.arrivals()
                    if chunk not in landed:
                        total = session.progress.total_chunks
                        lost = probe or any(c > chunk for c in landed)
                        if lost and (total is None or chunk < total):
                            recovered = self._landed_in_store(source, chunk)
                        if chunk not in recovered:
                            return
                    else:
                        y_start = self.clock()
                        loading = ahead.pop(chunk, None) or load(chunk)
                        for later in range(chunk + 1, chunk + 1 + _LOOKAHEAD):
                            if later in landed and later not in ahead:
                                ahead[later] = load(later)
                        parsed = loading.result()
                        if parsed.rejects:
                            self.store.put(rejects_key(source, chunk), rejects_csv(parsed.rejects))
                        self.fault("detector.in_ingest")
                        detected = session.apply(
                            chunk,
                            parsed.transactions,
                            parsed.records,
                            len(parsed.rejects),
                            y_start,
                            self.settings,
                            upgrade_inline=self.upgrade_engine is None,
                            rules=self.rules,
                        )
                if recovered:
                    self.state.record_arrivals(source, recovered)
                    report.recovered += [(source, c) for c in recovered if c not in landed]
                    probe = False
                    continue
                self.fault("detector.after_commit")
                report.applied.append((source, chunk))
                report.records += parsed.records
                report.rejects += len(parsed.rejects)
                report.detections += detected

    def _landed_in_store(self, source: str, chunk: int) -> list[int]:
        """Chunks from ``chunk`` on that are in the store (their events may be lost)."""
        after = chunk_key(source, chunk - 1) if chunk > 0 else ""
        refs = (parse_chunk_key(key) for key in self.store.list_keys(chunks_folder(source), after))
        return [r.chunk for r in refs if r is not None and r.chunk is not None and r.chunk >= chunk]

    def _read(self, source: str, chunk: int) -> ParsedChunk:
        data = self.store.get(chunk_key(source, chunk))
        return parse_chunk(data, chunk, self.settings.chunk_rows)

    def _stage(self, source: str, chunk: int, read: Future[ParsedChunk]) -> ParsedChunk:
        parsed = read.result()
        self.state.stage(source, chunk, parsed.transactions)
        return parsed

    def flush(self, source: str, report: DetectorReport) -> None:
        batch = self.settings.detection_batch_rows
        while True:
            with self.state.flush_session(source) as session:
                p = session.progress
                due = files_due(p.detections, p.files_written, batch, p.ended)
                if not due:
                    if p.ended:
                        report.ended.add(source)
                    return
                index = due[0]
                rows = session.rows(*file_bounds(index, batch))
                key = detections_key(source, index)
                self.store.put(key, detections_csv(rows, self.rules))
                self.fault("detector.after_file")
                if self.events is not None:  # after the file; again if the write is retried
                    self.events.file_written(self._file_written(source, key, rows))
                    self.fault("detector.after_event")
                session.mark_written(index + 1)
            report.files.append(key)
