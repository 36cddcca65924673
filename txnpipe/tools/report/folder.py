"""Reading a run folder: ``run.json``, the detection and rejects files and the manifest, and
each detection's evaluation point.

Detection files do not carry the chunk index. A row's evaluation point is found from its
``YStartTime``, which is the ``y_start`` of that point's chunk (truncated to milliseconds,
in IST) as ``run.json`` records it; this holds for PatId1 rows merged later by a batch
engine too, whose rows are not in evaluation-point order in the files.
"""
from __future__ import annotations

import bisect
import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from txnpipe.core.detections import HEADER, IST, RecordedDetection
from txnpipe.core.errors import TxnpipeError

_REJECTS_HEADER = ["record", "reason", "line"]
_PATTERN_ID = re.compile(r"PatId([1-9][0-9]*)")


@dataclass(frozen=True)
class ChunkTiming:
    chunk: int
    arrived_at: datetime | None
    y_start: datetime
    applied_at: datetime
    records: int
    rejects: int
    detections: int

    @property
    def landed_to_applied(self) -> float | None:
        if self.arrived_at is None:
            return None
        return (self.applied_at - self.arrived_at).total_seconds()

    @property
    def start_to_applied(self) -> float:
        return (self.applied_at - self.y_start).total_seconds()


@dataclass(frozen=True)
class RejectRow:
    chunk: int
    record: int | None
    reason: str


@dataclass
class RunData:
    """One stream of a run. A detection's ``chunk`` is its evaluation point, None when no
    chunk of run.json had started by its YStartTime."""

    folder: Path
    source: str
    chunks: list[ChunkTiming]
    detections: list[RecordedDetection]
    detection_files: int
    rejects: list[RejectRow]
    manifest: dict[str, Any] | None
    exact_matches: int = 0
    notes: list[str] = field(default_factory=list)


def _not_a_run(folder: Path, why: str) -> TxnpipeError:
    return TxnpipeError(f"{str(folder)!r} is not a txnpipe run folder: {why}")


def _moment(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"{where} is not a timestamp")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _stream_of(doc: dict[str, Any], source: str | None) -> dict[str, Any]:
    """The run's stream named ``source``, or its only one (a run.json of before txnpipe 0.4
    is one stream's document)."""
    streams = doc.get("streams", [doc])
    names = [str(s["source"]) for s in streams]
    if source is None:
        if len(streams) != 1:
            raise TxnpipeError(f"the run holds several streams ({', '.join(names)}): pick one "
                               "with --source")  # fmt: skip
        return streams[0]
    for stream in streams:
        if stream["source"] == source:
            return stream
    raise TxnpipeError(f"the run holds no stream {source!r} (it holds {', '.join(names)})")


def _read_run_json(folder: Path, source: str | None = None) -> tuple[str, list[ChunkTiming]]:
    path = folder / "run.json"
    if not folder.is_dir():
        raise _not_a_run(folder, "no such directory")
    if not path.is_file():
        raise _not_a_run(folder, "it has no run.json (`txnpipe run --out DIR` writes one)")
    try:
        stream = _stream_of(json.loads(path.read_text(encoding="utf-8")), source)
        source = stream["source"]
        if not isinstance(source, str) or not source or "/" in source or source in (".", ".."):
            raise ValueError(f"bad source {source!r}")
        chunks = []
        for i, c in enumerate(stream["chunks"]):
            chunks.append(
                ChunkTiming(
                    chunk=int(c["chunk"]),
                    arrived_at=(_moment(c["arrived_at"], f"chunks[{i}].arrived_at")
                                if c.get("arrived_at") is not None else None),
                    y_start=_moment(c["y_start"], f"chunks[{i}].y_start"),
                    applied_at=_moment(c["applied_at"], f"chunks[{i}].applied_at"),
                    records=int(c["records"]),
                    rejects=int(c["rejects"]),
                    detections=int(c["detections"]),
                )
            )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise _not_a_run(folder, f"run.json is unreadable ({type(exc).__name__}: {exc})") from None
    chunks.sort(key=lambda c: c.chunk)
    return source, chunks


def _csv_rows(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TxnpipeError(f"cannot read {str(path)!r}: {exc}") from None
    return list(csv.reader(io.StringIO(text, newline="")))


def _ms(moment: datetime) -> datetime:
    """As a detection file writes it: truncated to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class PointFinder:
    """A detection's evaluation point from its ``YStartTime``."""

    def __init__(self, chunks: Sequence[ChunkTiming]) -> None:
        pairs = sorted((_ms(c.y_start), c.chunk) for c in chunks)
        self.exact = {moment: chunk for moment, chunk in pairs}
        self.moments = [moment for moment, _ in pairs]
        self.chunk_at = [chunk for _, chunk in pairs]

    def find(self, moment: datetime) -> tuple[int | None, bool]:
        """(evaluation point, whether a chunk's y_start matches exactly)."""
        if moment in self.exact:
            return self.exact[moment], True
        # Not recorded exactly (another writer's clock, a hand-edited file): the latest
        # chunk whose application had started by then.
        i = bisect.bisect_right(self.moments, moment)
        return (self.chunk_at[i - 1], False) if i else (None, False)


def _file_moment(text: str, column: str, where: str) -> datetime:
    """A detection file's time; one without an offset is IST, as txnpipe writes them."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TxnpipeError(f"{where}: {column} {text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=IST)


def parse_detection(row: Sequence[str], finder: PointFinder,
                    where: str) -> tuple[RecordedDetection, bool]:  # fmt: skip
    """One row of a detection file (``HEADER``'s six fields) at its evaluation point, and
    whether its YStartTime matches a chunk exactly. The action is the catalogue's, by pattern."""
    y_start, detected_at, pattern_id, _action, customer, merchant = row
    y_moment = _file_moment(y_start, HEADER[0], where)
    detected_moment = _file_moment(detected_at, HEADER[1], where)
    pattern = _PATTERN_ID.fullmatch(pattern_id)
    if pattern is None:
        raise TxnpipeError(f"{where}: {pattern_id!r} is not a pattern id (PatIdN)")
    chunk, matched = finder.find(y_moment)
    detection = RecordedDetection(chunk, int(pattern.group(1)), merchant, customer, y_moment,
                                  detected_moment)  # fmt: skip
    return detection, matched


def _read_detections(folder: Path, source: str, finder: PointFinder) -> tuple[
    list[RecordedDetection], int, int
]:  # fmt: skip
    files = sorted((folder / "detections" / source).glob("detections_*.csv"))
    rows: list[RecordedDetection] = []
    exact = 0
    for path in files:
        table = _csv_rows(path)
        if not table or table[0] != list(HEADER):
            raise TxnpipeError(f"{str(path)!r} is not a detection file (header {HEADER})")
        for n, r in enumerate(table[1:], start=2):
            if len(r) != len(HEADER):
                raise TxnpipeError(f"{str(path)!r} line {n}: expected 6 fields, found {len(r)}")
            detection, matched = parse_detection(r, finder, f"{str(path)!r} line {n}")
            exact += matched
            rows.append(detection)
    return rows, len(files), exact


def _read_rejects(folder: Path, source: str) -> list[RejectRow]:
    rows = []
    for path in sorted((folder / "rejects" / source).glob("chunk_*.csv")):
        m = re.fullmatch(r"chunk_(\d+)\.csv", path.name)
        if not m:
            continue
        table = _csv_rows(path)
        if not table or [h.strip() for h in table[0][:2]] != _REJECTS_HEADER[:2]:
            raise TxnpipeError(f"{str(path)!r} is not a rejects file (header record,reason,...)")
        for r in table[1:]:
            if len(r) < 2:
                continue
            record = int(r[0]) if r[0].strip().isdigit() else None
            rows.append(RejectRow(int(m.group(1)), record, r[1]))
    return rows


def load_run(folder: Path, source: str | None = None) -> RunData:
    source, chunks = _read_run_json(folder, source)
    finder = PointFinder(chunks)
    detections, files, exact = _read_detections(folder, source, finder)
    rejects = _read_rejects(folder, source)
    manifest = None
    manifest_path = folder / "chunks" / source / "_manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = None
    data = RunData(folder, source, chunks, detections, files, rejects, manifest, exact)
    _cross_check(data)
    return data


def _cross_check(data: RunData) -> None:
    unmatched = sum(d.chunk is None for d in data.detections)
    approx = len(data.detections) - data.exact_matches - unmatched
    if unmatched:
        data.notes.append(
            f"{unmatched:,} detection rows have a YStartTime before the first chunk of "
            "run.json; they are left out of the per-chunk charts."
        )
    if approx:
        data.notes.append(
            f"{approx:,} detection rows have a YStartTime that matches no chunk's y_start "
            "exactly; they are placed at the latest chunk started by then."
        )
    logged = sum(c.detections for c in data.chunks)
    if logged != len(data.detections):
        data.notes.append(
            f"run.json counts {logged:,} detections at their chunks, the files hold "
            f"{len(data.detections):,} (PatId1 from a batch engine is not counted per chunk)."
        )
    logged_rejects = sum(c.rejects for c in data.chunks)
    if logged_rejects != len(data.rejects):
        data.notes.append(f"run.json counts {logged_rejects:,} rejects, the rejects files hold "
                          f"{len(data.rejects):,} rows.")  # fmt: skip
    if (data.manifest and isinstance(data.manifest.get("chunks"), int)
            and data.manifest["chunks"] != len(data.chunks)):  # fmt: skip
        data.notes.append(f"the manifest announces {data.manifest['chunks']:,} chunks, "
                          f"run.json lists {len(data.chunks):,}.")  # fmt: skip
