"""What the Lambda entry points tell CloudWatch: Powertools JSON logs and EMF metrics.

Only ``txnpipe/aws/entry.py`` imports this module; the pure core never sees Powertools. Logs are
one JSON object per line (Powertools ``Logger``) carrying the service, the source, the chunk
keys and the Lambda request id. Metrics are CloudWatch embedded metric format (Powertools
``Metrics``), namespace ``txnpipe``, dimensions ``service`` (chunker or detector) and
``source``: CloudWatch Logs turns those log lines into metrics, so the functions need no
``cloudwatch:PutMetricData`` permission and no network path to CloudWatch.

In Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set, also under ``sam local invoke``) both go to
stdout, which Lambda ships to the function's log group. Elsewhere (``txnpipe invoke``, tests)
they go to stderr, so that stdout keeps only the handler's result; nothing needs AWS.

The per-chunk numbers come from PostgreSQL: ``txnpipe.chunk_log`` (records, rejects, when a
chunk landed and when it was applied), ``txnpipe.detections`` (by pattern, read by the
``(source_id, seq)`` key from the sequence number the invocation started at) and
``txnpipe.arrivals`` (chunks that landed but wait for a predecessor), read through
``txnpipe.postgres.reports``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import IO, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from txnpipe.core.chunker import TickReport
from txnpipe.core.detector import DetectorReport
from txnpipe.core.keys import ChunkRef, chunk_key, detections_key, manifest_key
from txnpipe.core.ports import ChunkerState, UpgradeRun
from txnpipe.core.rules import CATALOGUE
from txnpipe.core.streams import Purge, Registration
from txnpipe.postgres import reports

NAMESPACE = "txnpipe"
CHUNKER_SERVICE = "chunker"
DETECTOR_SERVICE = "detector"
SOURCE_DIMENSION = "source"
PATTERNS = CATALOGUE.patterns


def in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def _target() -> IO[str]:
    return sys.stdout if in_lambda() else sys.stderr


class _TelemetryStream:
    """stdout in Lambda, stderr elsewhere; looked up on every write (tests swap sys.stdout)."""

    def write(self, text: str) -> int:
        return _target().write(text)

    def flush(self) -> None:
        _target().flush()


def namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE


def service_name(default: str) -> str:
    return os.environ.get("POWERTOOLS_SERVICE_NAME") or default


@cache
def logger(default_service: str) -> Logger:
    """One Powertools logger per function (the stack sets POWERTOOLS_SERVICE_NAME to the default)."""
    return Logger(service=service_name(default_service), stream=_TelemetryStream())  # type: ignore[arg-type]


_warm: set[str] = set()


def lambda_context_keys(context: Any) -> dict[str, Any]:
    """The keys Powertools' ``inject_lambda_context`` adds, from whatever the context has
    (``txnpipe invoke`` passes only a function name and a request id)."""
    keys = {
        "function_name": getattr(context, "function_name", None),
        "function_request_id": getattr(context, "aws_request_id", None),
        "function_memory_size": getattr(context, "memory_limit_in_mb", None),
        "function_arn": getattr(context, "invoked_function_arn", None),
    }
    return {k: v for k, v in keys.items() if v is not None}


@contextlib.contextmanager
def _telemetry(log: Logger) -> Iterator[None]:
    """Reporting never fails an invocation whose work is done (that would make Lambda retry)."""
    try:
        yield
    except Exception:  # any failure to report (a query, a log write): logged whole, not raised
        log.exception("telemetry failed")


@contextlib.contextmanager
def invocation(log: Logger, context: Any) -> Iterator[None]:
    """Fresh log keys for this invocation (request id, cold start); a failure is logged with
    them, then raised again so that Lambda counts the error and retries."""
    log.clear_state()
    cold_start = log.service not in _warm
    _warm.add(log.service)
    log.append_keys(cold_start=cold_start, **lambda_context_keys(context))
    try:
        yield
    except Exception:  # hides nothing: logged with the invocation's keys, then raised again
        log.exception("invocation failed")
        raise


@dataclass(frozen=True)
class Metric:
    name: str
    unit: MetricUnit
    values: Sequence[float]


def publish(service: str, source: str | None, metrics: Sequence[Metric]) -> None:
    """One EMF document (more past 100 values of a metric) for one source, written at once;
    for ``source`` None, the service's over every stream, without the source dimension:
    streams come and go, so that is what the stack's alarms watch."""
    if not any(m.values for m in metrics):
        return
    emf = Metrics(namespace=namespace(), service=service_name(service))
    try:
        with contextlib.redirect_stdout(_target()):  # Powertools prints EMF to stdout
            if source is not None:
                emf.add_dimension(name=SOURCE_DIMENSION, value=source)
            for metric in metrics:
                for value in metric.values:
                    emf.add_metric(name=metric.name, unit=metric.unit, value=value)
            emf.flush_metrics()
    finally:
        emf.clear_metrics()  # Powertools keeps metrics in class-level state


# -- chunker ----------------------------------------------------------------------------


def chunker_metrics(chunks_written: int, records: int, done: bool, busy: bool) -> list[Metric]:
    """``StreamActive`` is 1 until the stream is done, busy ticks included: a tick that keeps
    finding the lock held writes nothing, and that is exactly a stalled chunker."""
    return [
        Metric("ChunksWritten", MetricUnit.Count, [chunks_written]),
        Metric("Records", MetricUnit.Count, [records]),
        Metric("StreamActive", MetricUnit.Count, [0 if done else 1]),
        Metric("Busy", MetricUnit.Count, [1 if busy else 0]),
    ]


def records_written(pointer_records: int, chunk_rows: int, written: Sequence[int]) -> int:
    """Records in the chunks just written: chunk k starts at record ``chunk_rows·k`` and the
    pointer counts every record written so far (the last chunk may be short)."""
    if not written:
        return 0
    return pointer_records - chunk_rows * written[0]


def report_tick(log: Logger, report: TickReport, state: ChunkerState, chunk_rows: int) -> int:
    """Log the tick and emit its metrics; the number of records written."""
    records = 0
    with _telemetry(log):
        if report.chunks_written:
            pointer = state.load(report.source)
            total = pointer.records if pointer else 0
            records = records_written(total, chunk_rows, report.chunks_written)
        log.info(
            "chunker tick",
            extra={
                "source": report.source,
                "chunk_keys": [chunk_key(report.source, k) for k in report.chunks_written],
                "records": records,
                "done": report.done,
                "busy": report.busy,
            },
        )
        publish(
            CHUNKER_SERVICE,
            report.source,
            chunker_metrics(len(report.chunks_written), records, report.done, report.busy),
        )
    return records


def report_ticks(log: Logger, reports: Sequence[TickReport], state: ChunkerState,
                 chunk_rows: int) -> dict[str, int]:  # fmt: skip
    """Each stream's tick, then the totals: ``StreamsStalled`` counts the live streams that
    wrote nothing in this tick (their lock held elsewhere included), ``StreamsFailed`` those
    that failed in it. Returns the records written, by source."""
    records = {r.source: report_tick(log, r, state, chunk_rows) for r in reports}
    live = [r for r in reports if not r.done and r.failed is None]
    with _telemetry(log):
        for r in reports:
            if r.failed is not None:
                log.error("stream failed", extra={"source": r.source, "reason": r.failed})
        publish(CHUNKER_SERVICE, None, [
            Metric("ChunksWritten", MetricUnit.Count, [sum(len(r.chunks_written) for r in reports)]),
            Metric("StreamsActive", MetricUnit.Count, [len(live)]),
            Metric("StreamsStalled", MetricUnit.Count, [sum(not r.chunks_written for r in live)]),
            Metric("StreamsFailed", MetricUnit.Count, [sum(r.failed is not None for r in reports)]),
        ])  # fmt: skip
    return records


def report_registrations(log: Logger, registrations: Sequence[Registration]) -> None:
    """A line per input put; ``StreamsRefused`` (a put of a name that is already a stream,
    or of no valid name) is what the refusal alarm watches."""
    if not registrations:
        return
    with _telemetry(log):
        for r in registrations:
            extra = {"source": r.source, "outcome": r.outcome, "reason": r.reason}
            if r.stream is not None:
                extra.update(input_key=r.stream.input_key, importance_key=r.stream.importance_key)
            if r.outcome == "refused":
                log.warning("input put refused", extra=extra)
            else:
                log.info(f"stream {r.outcome}", extra=extra)
        failed = [r for r in registrations if r.stream is not None and r.outcome == "registered"
                  and r.stream.error is not None]  # fmt: skip
        publish(CHUNKER_SERVICE, None, [
            Metric("StreamsRegistered", MetricUnit.Count,
                   [sum(r.outcome == "registered" for r in registrations)]),
            Metric("StreamsRefused", MetricUnit.Count,
                   [sum(r.outcome == "refused" for r in registrations)]),
            Metric("StreamsFailed", MetricUnit.Count, [len(failed)]),
        ])  # fmt: skip


def report_purge(log: Logger, purged: Purge) -> None:
    with _telemetry(log):
        log.info("stream purged", extra={"source": purged.source, "removed": purged.removed,
                                         "already": purged.already})  # fmt: skip


def report_importance_put(log: Logger, key: str) -> None:
    with _telemetry(log):
        log.info("importance file put: streams registered from now on weigh with it",
                 extra={"importance_key": key})  # fmt: skip


# -- detector ---------------------------------------------------------------------------


def log_event(log: Logger, refs: Sequence[ChunkRef]) -> None:
    """The event's source and chunk keys go on every log line of the invocation."""
    sources = list(dict.fromkeys(ref.source for ref in refs))
    log.append_keys(
        source=sources[0] if len(sources) == 1 else sources,
        chunk_keys=[
            manifest_key(r.source) if r.chunk is None else chunk_key(r.source, r.chunk)
            for r in refs
        ],
    )
    log.info("detector event" if refs else "detector event names no chunk")


def detections_so_far(log: Logger, conn: Any, sources: Sequence[str]) -> dict[str, int]:
    """Each source's detection count before the invocation: the detections it records get
    sequence numbers from there on (sources not seen yet start at 0)."""
    found: dict[str, int] = {}
    if sources:
        with _telemetry(log):
            found = reports.detections_so_far(conn, sources)
    return {source: found.get(source, 0) for source in sources}


@dataclass
class AppliedStats:
    """What one invocation did for one source, from the database."""

    chunks: list[int] = field(default_factory=list)
    records: int = 0
    rejects: int = 0
    by_pattern: dict[int, int] = field(default_factory=lambda: {p: 0 for p in PATTERNS})
    lag_seconds: list[float] = field(default_factory=list)
    pending_chunks: int = 0
    pending_age_seconds: float = 0.0

    @property
    def detections(self) -> int:
        return sum(self.by_pattern.values())


def applied_stats(
    conn: Any,
    source: str,
    chunks: Sequence[int],
    first_seq: int,
    merged: Sequence[UpgradeRun] = (),
) -> AppliedStats:
    """Counts, lags and waiting chunks of one source after an invocation that applied
    ``chunks`` and merged the PatId1 batch runs ``merged``."""
    stats = AppliedStats(chunks=list(chunks))
    if chunks:
        for _, records, rejects, _, lag in reports.applied_chunks(conn, source, chunks):
            stats.records += int(records)
            stats.rejects += int(rejects)
            if lag is not None:  # arrived_at is unknown only for a chunk logged without arrival
                stats.lag_seconds.append(max(0.0, float(lag)))
    if chunks or merged:
        upgrade = CATALOGUE.percentile_rule
        runs = [(run.first, run.last) for run in merged]
        stats.by_pattern.update(reports.recorded_by_pattern(
            conn, source, chunks, first_seq, runs, upgrade.pattern if upgrade else 0))  # fmt: skip
    stats.pending_chunks, stats.pending_age_seconds = reports.pending(conn, source)
    return stats


def detector_metrics(
    stats: AppliedStats, files: int, duration_ms: float, recovered: int = 0,
    weights: tuple[int, int] | None = None,
) -> list[Metric]:  # fmt: skip
    """``recovered``: chunks and manifests found in S3 without their event; ``weights``:
    the importance rows read and skipped, when this invocation loaded them."""
    loaded = [] if weights is None else [
        Metric("ImportanceRows", MetricUnit.Count, [weights[0]]),
        Metric("ImportanceRowsSkipped", MetricUnit.Count, [weights[1]]),
    ]  # fmt: skip
    return [
        *loaded,
        Metric("EventsRecovered", MetricUnit.Count, [recovered]),
        Metric("ChunksApplied", MetricUnit.Count, [len(stats.chunks)]),
        Metric("Records", MetricUnit.Count, [stats.records]),
        Metric("Rejects", MetricUnit.Count, [stats.rejects]),
        Metric("Detections", MetricUnit.Count, [stats.detections]),
        *(
            Metric(f"DetectionsPatId{p}", MetricUnit.Count, [stats.by_pattern.get(p, 0)])
            for p in PATTERNS
        ),
        Metric("DetectionFiles", MetricUnit.Count, [files]),
        Metric("ChunkLagSeconds", MetricUnit.Seconds, stats.lag_seconds),
        Metric("PendingChunks", MetricUnit.Count, [stats.pending_chunks]),
        Metric("PendingChunkAgeSeconds", MetricUnit.Seconds, [stats.pending_age_seconds]),
        Metric("DetectorDurationMs", MetricUnit.Milliseconds, [duration_ms]),
    ]


def report_detector(
    log: Logger, conn: Any, report: DetectorReport, first_seq: Mapping[str, int], seconds: float
) -> None:
    """One log line and one EMF document per source of the event, and the lags over all
    of them (what the alarms watch)."""
    duration_ms = seconds * 1000.0
    lags: list[float] = []
    pending_ages: list[float] = []
    for source, first in first_seq.items():
        with _telemetry(log):
            applied = [chunk for s, chunk in report.applied if s == source]
            # A report's batch runs name no source; matched against one source's new PatId1
            # rows, another source's range can only find rows this source merged just now.
            stats = applied_stats(conn, source, applied, first, report.upgrade_runs)
            folder = detections_key(source, 0).rsplit("/", 1)[0] + "/"
            files = [key for key in report.files if key.startswith(folder)]
            recovered = [manifest_key(source) if k is None else chunk_key(source, k)
                         for s, k in report.recovered if s == source]  # fmt: skip
            weights = report.weights_loaded.get(source)
            loaded = {} if weights is None else {
                "importance_rows": weights[0], "importance_rows_skipped": weights[1]}  # fmt: skip
            log.info(
                "chunks applied" if applied else "no chunk applied",
                extra={
                    "source": source,
                    **loaded,
                    "recovered_keys": recovered,
                    "applied_chunk_keys": [chunk_key(source, k) for k in applied],
                    "records": stats.records,
                    "rejects": stats.rejects,
                    "detections": {f"PatId{p}": n for p, n in sorted(stats.by_pattern.items())},
                    "max_lag_seconds": max(stats.lag_seconds, default=None),
                    "pending_chunks": stats.pending_chunks,
                    "detection_files": files,
                    "ended": source in report.ended,
                    "duration_ms": round(duration_ms, 1),
                },
            )
            metrics = detector_metrics(stats, len(files), duration_ms, len(recovered), weights)
            publish(DETECTOR_SERVICE, source, metrics)
            lags += stats.lag_seconds
            pending_ages.append(stats.pending_age_seconds)
    with _telemetry(log):
        publish(DETECTOR_SERVICE, None, [
            Metric("ChunkLagSeconds", MetricUnit.Seconds, lags),
            Metric("PendingChunkAgeSeconds", MetricUnit.Seconds, [max(pending_ages)] if pending_ages else []),
        ])  # fmt: skip
