"""``txnpipe report``: one self-contained HTML page about a finished local run.

It reads only the run folder that ``txnpipe run --out DIR`` wrote: ``run.json`` (per-chunk
timings and counts), ``detections/<source>/detections_*.csv``, ``rejects/<source>/*.csv``
and ``chunks/<source>/_manifest.json``. Charts are drawn by matplotlib's Agg canvas (no
pyplot, so no global state) and embedded as base64 PNG: the page needs no network and no
other file.

Modules: ``folder`` reads a run folder into a ``RunData`` (detections as the core's
``RecordedDetection``, each at its evaluation point), ``analysis`` counts and ranks,
``charts`` draws, ``page`` renders the HTML.
"""
from __future__ import annotations

from pathlib import Path

from txnpipe.core.errors import TxnpipeError
from txnpipe.tools.report.analysis import (
    CustomerLine,
    MerchantLine,
    per_chunk_counts,
    quantile,
    reason_category,
    top_customers,
    top_merchants,
)
from txnpipe.tools.report.folder import ChunkTiming, RejectRow, RunData, load_run
from txnpipe.tools.report.page import render_html

__all__ = [
    "ChunkTiming", "CustomerLine", "MerchantLine", "RejectRow", "RunData", "load_run",
    "per_chunk_counts", "quantile", "reason_category", "render_html", "top_customers",
    "top_merchants", "write_report",
]  # fmt: skip


def write_report(run_dir: Path, out: Path, top: int = 10, source: str | None = None) -> Path:
    """Write ``out/report.html`` for the run in ``run_dir``; returns its path."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise TxnpipeError(
            "txnpipe report draws its charts with matplotlib: pip install 'matplotlib>=3.8'"
        ) from None
    data = load_run(run_dir, source)
    page = render_html(data, top)
    try:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "report.html"
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise TxnpipeError(f"cannot write the report to {str(out)!r}: {exc}") from None
    return path
