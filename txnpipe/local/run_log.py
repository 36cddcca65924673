"""What a local run reports: the summary it prints and the ``run.json`` it writes."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from txnpipe.local import preflight
from txnpipe.local.chaos import Chaos, ChaosReport
from txnpipe.postgres import reports


@dataclass
class StreamSummary:
    source: str
    chunks: int = 0
    records: int = 0
    rejects: int = 0
    detections: dict[str, int] = field(default_factory=dict)
    files: int = 0
    importance_rows: int = 0
    importance_skipped: int = 0


@dataclass
class RunSummary:
    streams: list[StreamSummary]
    seconds: float = 0.0
    out: Path = Path(".")
    chaos: ChaosReport | None = None

    def _total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.streams)

    @property
    def chunks(self) -> int:
        return self._total("chunks")

    @property
    def records(self) -> int:
        return self._total("records")

    @property
    def rejects(self) -> int:
        return self._total("rejects")

    @property
    def files(self) -> int:
        return self._total("files")

    @property
    def detections(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for s in self.streams:
            for pattern, n in s.detections.items():
                totals[pattern] = totals.get(pattern, 0) + n
        return totals


def stream_record(conn: Any, source: str) -> tuple[StreamSummary, dict[str, Any]]:
    """A stream's summary, and its part of ``run.json``: per-chunk timings and counts (for
    ``txnpipe report``) and the importance rows read and skipped."""
    rows = reports.chunk_log(conn, source)
    rows_read, skipped = reports.importance_rows(conn, source)
    summary = StreamSummary(
        source=source,
        chunks=len(rows),
        records=sum(r[4] for r in rows),
        rejects=sum(r[5] for r in rows),
        detections={f"PatId{p}": n for p, n in reports.detections_by_pattern(conn, source).items()},
        importance_rows=rows_read,
        importance_skipped=skipped,
    )
    chunks = [
        {
            "chunk": c,
            "arrived_at": a.isoformat() if a else None,
            "y_start": y.isoformat(),
            "applied_at": d.isoformat(),
            "records": r,
            "rejects": j,
            "detections": n,
        }
        for c, a, y, d, r, j, n in rows
    ]
    importance = {"rows": rows_read, "skipped": skipped}
    return summary, {"source": source, "importance": importance, "chunks": chunks}


def write_run_log(streams: list[dict[str, Any]], out: Path, chaos: Chaos | None) -> None:
    """``run.json``: every stream's record, and what chaos injected, if it ran. The records
    of other streams whose outputs are in the folder (an earlier run's, which this one left
    alone) are kept, so that the file describes the whole folder."""
    path = out / preflight.RUN_LOG
    ours = {s["source"] for s in streams}
    kept = [s for s in read_run_log(out).get("streams", []) if s.get("source") not in ours]
    doc = {"streams": sorted(kept + streams, key=lambda s: s["source"]),
           "chaos": chaos.report.as_dict() if chaos else None}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))


def read_run_log(out: Path) -> dict[str, Any]:
    """The folder's ``run.json`` (empty if there is none or it is no run log)."""
    try:
        doc = json.loads((out / preflight.RUN_LOG).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def stream_inputs(input_path: Path, importance: Path, settings: dict[str, Any],
                  upgrade_engine: str, fast: bool) -> dict[str, Any]:  # fmt: skip
    """What a stream was run from, as ``run.json`` records it: what ``txnpipe restart``
    runs again."""
    return {"transactions": str(input_path.resolve()), "importance": str(importance.resolve()),
            "settings": settings, "upgrade_engine": upgrade_engine, "fast": fast}  # fmt: skip
