"""``txnpipe status``: where every stream in a txnpipe database stands.

Read-only: one REPEATABLE READ, READ ONLY transaction, so the figures of a source are one
consistent snapshot even while the chunker and the detector are working. The schema is
never created or migrated here (unlike ``postgres.connect``): a database without it is an
error. Every statement binds its values as parameters.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import conninfo

from txnpipe.core.detections import files_due
from txnpipe.core.errors import TxnpipeError, one_line
from txnpipe.core.rules import CATALOGUE
from txnpipe.postgres import status_queries


@dataclass
class SourceStatus:
    source: str
    state: str  # not started | chunking | applying | flushing | ended | failed | purged
    ended: bool
    # Mechanism X
    chunks_written: int
    records_read: int
    chunker_done: bool
    chunker_updated_at: datetime | None
    # Mechanism Y
    total_chunks: int | None  # from the manifest; None until the detector has seen it
    chunks_applied: int
    chunks_pending: int  # written (or announced by the manifest) and not applied yet
    chunks_landed_waiting: int  # their put events came in, not applied yet
    records_applied: int
    rejects: int
    detections: int
    detections_by_pattern: dict[str, int]
    detection_files: int
    detections_in_files: int
    detections_pending: int
    upgrade_run: str | None  # PatId1 batch run in flight, if any
    importance_rows: int | None  # read from the importance file (None: not loaded yet)
    importance_skipped: int | None  # of them skipped (SPEC 2.2)
    lag_seconds: float | None
    lag_kind: str | None  # "oldest waiting chunk" | "last applied chunk"
    last_applied_chunk: int | None
    last_applied_at: datetime | None
    # The stream registry: what it reads, pinned to which versions, and why it failed
    error: str | None = None
    input_key: str | None = None
    input_version: str | None = None  # S3 version id (the ETag where the bucket keeps none)
    importance_key: str | None = None
    importance_version: str | None = None
    registered_at: datetime | None = None
    restarts: int = 0

    @property
    def stream(self) -> str:
        """live, ended, failed or purged."""
        return self.state if self.state in ("ended", "failed", "purged") else "live"


@dataclass(frozen=True)
class Refusal:
    source: str
    input_key: str
    reason: str
    refused_at: datetime


@dataclass
class StatusReport:
    database: str
    checked_at: datetime
    detection_batch_rows: int
    sources: list[SourceStatus] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)  # the latest first

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def describe_url(url: str) -> str:
    """The database named without its password: ``user@host:port/dbname``."""
    try:
        info = conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        why = one_line(exc)
        raise TxnpipeError(f"cannot reach the database: bad --database-url: {why}") from None
    host = str(info.get("host") or "localhost")
    if host.startswith("/"):
        host = f"[{host}]"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"{user}{host}{port}/{info.get('dbname') or ''}"


def collect(url: str, detection_batch_rows: int = 100, source: str | None = None) -> StatusReport:
    """Every source's status (or one source's) read in one snapshot."""
    where = describe_url(url)
    try:
        snap = status_queries.snapshot(url, source)
    except psycopg.OperationalError as exc:
        raise TxnpipeError(f"cannot reach the database {where}: {one_line(exc)}") from None
    except psycopg.Error as exc:
        raise TxnpipeError(f"cannot read txnpipe status from {where}: {one_line(exc)}") from None
    if snap.missing:
        what = ("no txnpipe schema" if len(snap.missing) == len(status_queries.TABLES)
                else "an incomplete txnpipe schema (missing "
                + ", ".join(f"txnpipe.{m}" for m in snap.missing) + ")")  # fmt: skip
        raise TxnpipeError(f"database {where} has {what}; is it the database txnpipe runs on?")
    if source is not None and not snap.sources:
        raise TxnpipeError(f"database {where} has no source named {source!r}")
    per_pattern: dict[str, dict[str, int]] = {}
    for name, pattern, count in snap.per_pattern:
        per_pattern.setdefault(name, {})[f"PatId{pattern}"] = count
    report = StatusReport(where, snap.now, detection_batch_rows,
                          refusals=[Refusal(*r) for r in snap.refusals])  # fmt: skip
    for row in snap.sources:
        report.sources.append(_source_status(row, per_pattern.get(row[0], {}), snap.now,
                                             detection_batch_rows, snap.streams.get(row[0])))  # fmt: skip
    return report


def _source_status(
    row: Sequence[Any], per_pattern: dict[str, int], now: datetime, batch: int,
    registered: Sequence[Any] | None = None,
) -> SourceStatus:  # fmt: skip
    """``registered``: the source's row of status_streams.sql (None: not registered)."""
    (name, has_chunker, written, records_read, chunker_done, chunker_at,
     has_detector, applied, total, _total_records, detections, files, upgrade_through,
     upgrade_run, weights_rows, weights_skipped,
     waiting, oldest_arrival, last_chunk, last_arrived, _last_y_start, last_applied,
     records_applied, rejects) = row  # fmt: skip
    written = int(written or 0)
    applied = int(applied or 0)
    detections = int(detections or 0)
    files = int(files or 0)
    known = max(written, int(total) if total is not None else 0)
    # With a PatId1 batch engine, a point is final only once its batch run has merged.
    upgrades_done = upgrade_through is None or total is None or upgrade_through >= total - 1
    ended = bool(
        has_detector
        and total is not None
        and applied >= total
        and upgrades_done
        and not files_due(detections, files, batch, True)
    )
    in_files = min(detections, files * batch)
    if waiting:
        lag: float | None = (now - oldest_arrival).total_seconds()
        lag_kind: str | None = "oldest waiting chunk"
    elif last_applied is not None and last_arrived is not None:
        lag, lag_kind = (last_applied - last_arrived).total_seconds(), "last applied chunk"
    else:
        lag, lag_kind = None, None
    status, error, input_key, input_version, importance_key, importance_version, \
        registered_at, restarts = registered or (None,) * 7 + (0,)
    if status in ("failed", "purged"):
        state = status
    elif ended:
        state = "ended"
    elif not has_chunker and not has_detector:
        state = "not started"
    elif total is not None and applied >= total:
        state = "flushing"
    elif waiting or applied < written:
        state = "applying"
    else:
        state = "chunking"
    return SourceStatus(
        source=name,
        state=state,
        ended=ended,
        chunks_written=written,
        records_read=int(records_read or 0),
        chunker_done=bool(chunker_done),
        chunker_updated_at=chunker_at,
        total_chunks=int(total) if total is not None else None,
        chunks_applied=applied,
        chunks_pending=max(known - applied, 0),
        chunks_landed_waiting=int(waiting or 0),
        records_applied=int(records_applied or 0),
        rejects=int(rejects or 0),
        detections=detections,
        detections_by_pattern={label: per_pattern.get(label, 0)
                               for label, _ in map(CATALOGUE.label, CATALOGUE.patterns)},
        detection_files=files,
        detections_in_files=in_files,
        detections_pending=detections - in_files,
        upgrade_run=upgrade_run,
        importance_rows=int(weights_rows) if weights_rows is not None else None,
        importance_skipped=int(weights_skipped) if weights_skipped is not None else None,
        lag_seconds=lag,
        lag_kind=lag_kind,
        last_applied_chunk=int(last_chunk) if last_chunk is not None else None,
        last_applied_at=last_applied,
        error=error,
        input_key=input_key,
        input_version=input_version,
        importance_key=importance_key,
        importance_version=importance_version,
        registered_at=registered_at,
        restarts=int(restarts),
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def print_table(report: StatusReport) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    if not report.sources:
        console.print(f"no sources in {report.database}", highlight=False, markup=False)
        return
    when = f"{report.checked_at:%Y-%m-%d %H:%M:%S %Z}"
    table = Table(title=escape(f"txnpipe status: {report.database} at {when}"),
                  box=box.SIMPLE_HEAVY)
    table.add_column("source", no_wrap=True)
    table.add_column("stream")
    for heading in ("chunks written", "applied", "pending", "detections", "in files",
                    "not in files", "lag", "rejects"):  # fmt: skip
        table.add_column(heading, justify="right")
    table.add_column("importance (version; rows skipped)")
    for s in report.sources:
        pending = f"{s.chunks_pending:,}"
        if s.chunks_landed_waiting:
            pending += f" ({s.chunks_landed_waiting:,} landed)"
        lag = _seconds(s.lag_seconds)
        if s.lag_kind == "oldest waiting chunk":
            lag += " waiting"
        patterns = " ".join(f"{n:,}" for n in s.detections_by_pattern.values())
        stream = s.stream if s.stream != "live" else f"live: {s.state}"
        if s.upgrade_run:
            stream += " (PatId1 batch run)"
        if s.total_chunks is None and s.chunker_done:
            stream += " (manifest not seen)"
        importance = "-"
        if s.importance_key is not None:
            importance = f"{s.importance_key.rsplit('/', 1)[-1]} ({(s.importance_version or '')[:12]}"
            importance += "" if s.importance_skipped is None else f"; {s.importance_skipped:,} of {s.importance_rows or 0:,}"
            importance += ")"
        table.add_row(
            escape(s.source),
            escape(stream),
            f"{s.chunks_written:,}",
            f"{s.chunks_applied:,}",
            pending,
            f"{s.detections:,} ({patterns})",
            f"{s.detections_in_files:,} / {s.detection_files:,} files",
            f"{s.detections_pending:,}",
            lag,
            f"{s.rejects:,}",
            escape(importance),
        )
    console.print(table)
    for s in report.sources:
        if s.error:
            console.print(f"{s.source} failed: {s.error}", highlight=False, markup=False,
                          style="red")  # fmt: skip
    for r in report.refusals:
        console.print(f"refused at {r.refused_at:%Y-%m-%d %H:%M:%S}: {r.input_key}: {r.reason}",
                      highlight=False, markup=False, style="yellow")  # fmt: skip
    console.print(
        "detections: total (PatId1 PatId2 PatId3); not in files: recorded, waiting for a full "
        "file or the stream's end\nlag: landed→applied of the last applied chunk, or the age "
        "of the oldest landed chunk still waiting",
        highlight=False,
        style="dim",
    )
