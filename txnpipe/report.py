"""``txnpipe report``: one self-contained HTML page about a finished local run.

It reads only the run folder that ``txnpipe run --out DIR`` wrote: ``run.json`` (per-chunk
timings and counts), ``detections/<source>/detections_*.csv``, ``rejects/<source>/*.csv``
and ``chunks/<source>/_manifest.json``. Charts are drawn by matplotlib's Agg canvas (no
pyplot, so no global state) and embedded as base64 PNG: the page needs no network and no
other file.

Detection files do not carry the chunk index. A row's evaluation point is found from its
``YStartTime``, which is the ``y_start`` of that point's chunk (truncated to milliseconds,
in IST) as ``run.json`` records it; this holds for PatId1 rows merged later by a batch
engine too, whose rows are not in evaluation-point order in the files.
"""
from __future__ import annotations

import base64
import bisect
import csv
import html
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from txnpipe.detections import HEADER, IST
from txnpipe.errors import TxnpipeError
from txnpipe.rules import PATTERNS

PATTERN_IDS = [pid for pid, _ in PATTERNS.values()]
ACTIONS = dict(PATTERNS.values())
COLORS = {"PatId1": "#1f77b4", "PatId2": "#ff7f0e", "PatId3": "#2ca02c"}
_REJECTS_HEADER = ["record", "reason", "line"]


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
class DetectionRow:
    y_start: str
    detected_at: str
    pattern: str
    action: str
    customer: str
    merchant: str
    chunk: int | None  # the evaluation point, None when no chunk of run.json matches


@dataclass(frozen=True)
class RejectRow:
    chunk: int
    record: int | None
    reason: str


@dataclass
class RunData:
    folder: Path
    source: str
    chunks: list[ChunkTiming]
    detections: list[DetectionRow]
    detection_files: int
    rejects: list[RejectRow]
    manifest: dict[str, Any] | None
    exact_matches: int = 0
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- loading


def _not_a_run(folder: Path, why: str) -> TxnpipeError:
    return TxnpipeError(f"{str(folder)!r} is not a txnpipe run folder: {why}")


def _moment(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"{where} is not a timestamp")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
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
                                if c.get("arrived_at") is not None else None),  # fmt: skip
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


class _PointFinder:
    """A detection's evaluation point from its ``YStartTime``."""

    def __init__(self, chunks: Sequence[ChunkTiming]) -> None:
        pairs = sorted((_ms(c.y_start), c.chunk) for c in chunks)
        self.exact = {moment: chunk for moment, chunk in pairs}
        self.moments = [moment for moment, _ in pairs]
        self.chunk_at = [chunk for _, chunk in pairs]

    def find(self, text: str) -> tuple[int | None, bool]:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None, False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=IST)
        if moment in self.exact:
            return self.exact[moment], True
        # Not recorded exactly (another writer's clock, a hand-edited file): the latest
        # chunk whose application had started by then.
        i = bisect.bisect_right(self.moments, moment)
        return (self.chunk_at[i - 1], False) if i else (None, False)


def _read_detections(folder: Path, source: str, finder: _PointFinder) -> tuple[
    list[DetectionRow], int, int
]:  # fmt: skip
    files = sorted((folder / "detections" / source).glob("detections_*.csv"))
    rows: list[DetectionRow] = []
    exact = 0
    for path in files:
        table = _csv_rows(path)
        if not table or table[0] != list(HEADER):
            raise TxnpipeError(f"{str(path)!r} is not a detection file (header {HEADER})")
        for n, r in enumerate(table[1:], start=2):
            if len(r) != len(HEADER):
                raise TxnpipeError(f"{str(path)!r} line {n}: expected 6 fields, found {len(r)}")
            chunk, matched = finder.find(r[0])
            exact += matched
            rows.append(DetectionRow(r[0], r[1], r[2], r[3], r[4], r[5], chunk))
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
    finder = _PointFinder(chunks)
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
    if data.manifest and isinstance(data.manifest.get("chunks"), int):
        if data.manifest["chunks"] != len(data.chunks):
            data.notes.append(f"the manifest announces {data.manifest['chunks']:,} chunks, "
                              f"run.json lists {len(data.chunks):,}.")  # fmt: skip


# ----------------------------------------------------------------------------- analysis

_QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")


def reason_category(reason: str) -> str:
    """A reason without its value: ``value '-1' is negative`` -> ``value … is negative``."""
    return _QUOTED.sub("…", reason).strip()


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class MerchantLine:
    pattern: str
    merchant: str
    detections: int
    customers: int
    first_chunk: int | None
    last_chunk: int | None


def top_merchants(rows: Iterable[DetectionRow], top: int) -> dict[str, list[MerchantLine]]:
    groups: dict[tuple[str, str], list[DetectionRow]] = defaultdict(list)
    for d in rows:
        groups[(d.pattern, d.merchant)].append(d)
    result: dict[str, list[MerchantLine]] = {}
    for (pattern, merchant), ds in groups.items():
        points = [d.chunk for d in ds if d.chunk is not None]
        result.setdefault(pattern, []).append(
            MerchantLine(pattern, merchant, len(ds), len({d.customer for d in ds if d.customer}),
                         min(points) if points else None, max(points) if points else None)
        )  # fmt: skip
    for pattern, lines in result.items():
        lines.sort(key=lambda m: (-m.detections, m.merchant.encode()))
        result[pattern] = lines[:top]
    return result


@dataclass(frozen=True)
class CustomerLine:
    customer: str
    detections: int
    by_pattern: dict[str, int]
    merchants: int
    first_chunk: int | None


def top_customers(rows: Iterable[DetectionRow], top: int) -> list[CustomerLine]:
    groups: dict[str, list[DetectionRow]] = defaultdict(list)
    for d in rows:
        if d.customer:
            groups[d.customer].append(d)
    lines = []
    for customer, ds in groups.items():
        points = [d.chunk for d in ds if d.chunk is not None]
        lines.append(CustomerLine(customer, len(ds), dict(Counter(d.pattern for d in ds)),
                                  len({d.merchant for d in ds}),
                                  min(points) if points else None))  # fmt: skip
    lines.sort(key=lambda c: (-c.detections, -c.merchants, c.customer.encode()))
    return lines[:top]


def per_chunk_counts(data: RunData) -> tuple[list[int], dict[str, list[int]]]:
    """Chunk indices of run.json and, per pattern, new detections at each of them."""
    index = [c.chunk for c in data.chunks]
    position = {chunk: i for i, chunk in enumerate(index)}
    counts: dict[str, list[int]] = {p: [0] * len(index) for p in _patterns(data)}
    for d in data.detections:
        if d.chunk is not None and d.chunk in position:
            counts[d.pattern][position[d.chunk]] += 1
    return index, counts


def _patterns(data: RunData) -> list[str]:
    extra = sorted({d.pattern for d in data.detections} - set(PATTERN_IDS))
    return PATTERN_IDS + extra


# ----------------------------------------------------------------------------- charts


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, facecolor="white")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _integer_axes(ax: Any, which: str) -> None:
    from matplotlib.ticker import MaxNLocator

    for axis in which:
        getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))


def _short(text: str, width: int = 22) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def chart_cumulative(data: RunData) -> str:
    index, counts = per_chunk_counts(data)
    patterns = list(counts)
    fig = _figure(11.5, 6.2)
    grid = fig.add_gridspec(2, len(patterns), height_ratios=[1.1, 1])
    for i, pattern in enumerate(patterns):
        ax = fig.add_subplot(grid[0, i])
        running, total = [], 0
        for n in counts[pattern]:
            total += n
            running.append(total)
        color = COLORS.get(pattern, "#7f7f7f")
        if index:
            ax.step(index, running, where="post", color=color, linewidth=2)
            ax.fill_between(index, running, step="post", color=color, alpha=0.15)
        ax.set_title(f"{pattern} {ACTIONS.get(pattern, '')}: {total:,}", fontsize=11)
        _integer_axes(ax, "y")
        ax.set_xlabel("evaluation point (chunk)")
        if i == 0:
            ax.set_ylabel("cumulative detections")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    ax = fig.add_subplot(grid[1, :])
    bottom = [0] * len(index)
    for pattern in patterns:
        ax.bar(index, counts[pattern], bottom=bottom, width=0.85, label=pattern,
               color=COLORS.get(pattern, "#7f7f7f"))  # fmt: skip
        bottom = [b + n for b, n in zip(bottom, counts[pattern])]
    ax.set_ylim(0, max(max(bottom, default=0), 1) * 1.12)
    ax.set_xlabel("evaluation point (chunk)")
    ax.set_ylabel("new detections")
    ax.set_title("new detections at each evaluation point", fontsize=11)
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    _integer_axes(ax, "xy")
    return _png(fig)


def chart_merchants(tops: dict[str, list[MerchantLine]], patterns: Sequence[str]) -> str:
    shown = [p for p in patterns if tops.get(p)]
    rows = max((len(tops[p]) for p in shown), default=1)
    fig = _figure(11.5, max(2.6, 0.32 * rows + 1.4))
    if not shown:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no detections", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
        return _png(fig)
    axes = fig.subplots(1, len(shown), squeeze=False)[0]
    for ax, pattern in zip(axes, shown):
        lines = tops[pattern][::-1]
        ax.barh([_short(m.merchant) for m in lines], [m.detections for m in lines],
                color=COLORS.get(pattern, "#7f7f7f"))  # fmt: skip
        ax.set_title(f"{pattern} {ACTIONS.get(pattern, '')}: top merchants", fontsize=11)
        ax.set_xlabel("detections")
        ax.set_ylim(len(lines) - rows - 0.5, len(lines) - 0.5)  # same bar height everywhere
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
        _integer_axes(ax, "x")
    return _png(fig)


def chart_latency(data: RunData) -> str:
    fig = _figure(11.5, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    landed = [(c.chunk, c.landed_to_applied) for c in data.chunks
              if c.landed_to_applied is not None]  # fmt: skip
    if landed:
        ax.plot([c for c, _ in landed], [v * 1000 for _, v in landed], marker="o", markersize=3,
                linewidth=1.2, color="#d62728", label="landed → applied")  # fmt: skip
    ax.plot([c.chunk for c in data.chunks], [c.start_to_applied * 1000 for c in data.chunks],
            marker="s", markersize=3, linewidth=1.2, color="#9467bd",
            label="YStartTime → applied (apply time)")  # fmt: skip
    ax.set_xlabel("chunk")
    _integer_axes(ax, "x")
    ax.set_ylabel("milliseconds")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    ax.set_title("per-chunk latency", fontsize=11)
    return _png(fig)


def chart_rejects(reasons: Counter[str]) -> str:
    items = reasons.most_common()[::-1]
    fig = _figure(11.5, max(2.2, 0.38 * len(items) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    if not items:
        ax.text(0.5, 0.5, "no rejected records", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
        return _png(fig)
    ax.barh([_short(r, 40) for r, _ in items], [n for _, n in items], color="#8c564b")
    _integer_axes(ax, "x")
    ax.set_xlabel("rejected records")
    ax.tick_params(axis="y", labelsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("rejects by reason", fontsize=11)
    return _png(fig)


# ----------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;
  background:#f4f5f7;color:#1d1f23}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:0 0 12px;border-bottom:2px solid #e1e4e8;padding-bottom:6px}
h3{font-size:15px;margin:18px 0 6px}
section{background:#fff;border-radius:8px;padding:18px 22px;margin:18px 0;
  box-shadow:0 1px 3px rgba(0,0,0,.08)}
.sub{color:#5a6270;margin:0 0 8px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px}
.card{background:#f7f9fc;border:1px solid #e1e4e8;border-radius:6px;padding:10px 14px}
.card b{display:block;font-size:22px}
.card span{color:#5a6270;font-size:13px}
img{max-width:100%;height:auto;display:block;margin:8px 0}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px;width:100%}
th,td{border-bottom:1px solid #e8eaee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f6}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.id{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;word-break:break-all}
.notes{background:#fff8e5;border:1px solid #f0d68a;border-radius:6px;padding:8px 14px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}
footer{color:#7a818c;font-size:12px;text-align:center;margin:12px 0 24px}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}" if digits else f"{value:,}"


def _table(headings: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Collection[int],
           ids: Collection[int] = ()) -> str:  # fmt: skip
    head = "".join(f'<th class="n">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
                   for i, h in enumerate(headings))  # fmt: skip
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = ' class="n"' if i in numeric else ' class="id"' if i in ids else ""
            cells.append(f"<td{cls}>{_e(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headings)}">none</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _ist(moment: datetime | None) -> str:
    return moment.astimezone(IST).isoformat(sep=" ", timespec="milliseconds") if moment else "–"


def render_html(data: RunData, top: int = 10) -> str:
    patterns = _patterns(data)
    by_pattern = Counter(d.pattern for d in data.detections)
    records = sum(c.records for c in data.chunks)
    first = min((c.arrived_at or c.y_start for c in data.chunks), default=None)
    last = max((c.applied_at for c in data.chunks), default=None)
    span = (last - first).total_seconds() if first and last else None

    cards = [
        (f"{len(data.chunks):,}", "chunks applied"),
        (f"{records:,}", "records"),
        (f"{len(data.rejects):,}", "rejected records"),
        (f"{len(data.detections):,}", f"detections in {data.detection_files:,} files"),
        *[(f"{by_pattern.get(p, 0):,}", f"{p} {ACTIONS.get(p, '')}") for p in patterns],
        (f"{span:,.1f} s" if span is not None else "–", "first landing → last applied"),
    ]
    card_html = "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>'
                        for v, k in cards)  # fmt: skip
    manifest = (f"manifest: {data.manifest.get('chunks', '?')} chunks, "
                f"{data.manifest.get('records', '?')} records" if data.manifest
                else "no manifest in the run folder")  # fmt: skip
    notes = ""
    if data.notes:
        notes = '<div class="notes"><b>Notes</b><ul>' + "".join(
            f"<li>{_e(n)}</li>" for n in data.notes) + "</ul></div>"  # fmt: skip

    # Detections over the stream.
    index, counts = per_chunk_counts(data)
    firsts = []
    for p in patterns:
        points = [c for c, n in zip(index, counts[p]) if n]
        firsts.append((p, ACTIONS.get(p, ""), by_pattern.get(p, 0),
                       points[0] if points else "–", points[-1] if points else "–",
                       len(points)))  # fmt: skip
    detections_table = _table(
        ["pattern", "action", "detections", "first point", "last point", "points with any"],
        firsts, numeric={2, 3, 4, 5},
    )

    # Merchants and customers.
    tops = top_merchants(data.detections, top)
    merchant_tables = []
    for p in patterns:
        lines = tops.get(p, [])
        if p == "PatId3":
            headings = ["merchant", "detections", "first point"]
            rows = [(m.merchant, m.detections, _num(m.first_chunk)) for m in lines]
            numeric = {1, 2}
        else:
            headings = ["merchant", "detections", "customers", "first point", "last point"]
            rows = [(m.merchant, m.detections, m.customers, _num(m.first_chunk),
                     _num(m.last_chunk)) for m in lines]  # fmt: skip
            numeric = {1, 2, 3, 4}
        merchant_tables.append(
            f"<div><h3>{_e(p)} {_e(ACTIONS.get(p, ''))}: top {top} merchants</h3>"
            + _table(headings, rows, numeric, ids={0}) + "</div>"
        )
    customers = top_customers(data.detections, top)
    customer_table = _table(
        ["customer", "detections", *[p for p in patterns if p != "PatId3"], "merchants",
         "first point"],
        [(c.customer, c.detections, *[c.by_pattern.get(p, 0) for p in patterns if p != "PatId3"],
          c.merchants, _num(c.first_chunk)) for c in customers],
        numeric=set(range(1, len(patterns) + 3)), ids={0},
    )  # fmt: skip

    # Latency.
    landed = [c.landed_to_applied for c in data.chunks if c.landed_to_applied is not None]
    apply = [c.start_to_applied for c in data.chunks]
    latency_rows = []
    for label, values in (("landed → applied", landed), ("YStartTime → applied", apply)):
        latency_rows.append((label, len(values),
                             *[_num(None if v is None else v * 1000, 1)
                               for v in (quantile(values, 0.5), quantile(values, 0.95),
                                         max(values, default=None))]))  # fmt: skip
    latency_table = _table(["interval", "chunks", "median ms", "p95 ms", "max ms"],
                           latency_rows, numeric={1, 2, 3, 4})  # fmt: skip
    slowest = sorted(data.chunks, key=lambda c: -(c.landed_to_applied or c.start_to_applied))[:5]
    slow_table = _table(
        ["chunk", "landed (IST)", "YStartTime (IST)", "applied (IST)", "landed → applied ms",
         "records", "rejects", "detections"],
        [(c.chunk, _ist(c.arrived_at), _ist(c.y_start), _ist(c.applied_at),
          _num(None if c.landed_to_applied is None else c.landed_to_applied * 1000, 1),
          c.records, c.rejects, c.detections) for c in slowest],
        numeric={0, 4, 5, 6, 7},
    )  # fmt: skip

    # Rejects.
    reasons: Counter[str] = Counter(reason_category(r.reason) for r in data.rejects)
    examples: dict[str, list[RejectRow]] = defaultdict(list)
    for r in data.rejects:
        examples[reason_category(r.reason)].append(r)
    reject_table = _table(
        ["reason", "records", "chunks", "examples (record: reason)"],
        [(reason, n, len({r.chunk for r in examples[reason]}),
          "; ".join(f"{r.record}: {r.reason}" for r in examples[reason][:3]))
         for reason, n in reasons.most_common()],
        numeric={1, 2},
    )  # fmt: skip

    generated = datetime.now(IST).isoformat(sep=" ", timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>txnpipe report: {_e(data.source)}</title>
<style>{_CSS}</style></head>
<body><main>
<header><h1>txnpipe run report: {_e(data.source)}</h1>
<p class="sub">run folder {_e(data.folder)} · {_e(manifest)} ·
first landing {_e(_ist(first))} · last applied {_e(_ist(last))} (IST)</p></header>

<section id="summary"><h2>Summary</h2><div class="cards">{card_html}</div>{notes}</section>

<section id="detections"><h2>Detections per pattern over the stream</h2>
<p class="sub">Each chunk is an evaluation point; a detection belongs to the point whose
YStartTime it carries (matched to run.json's y_start).</p>
{_img(chart_cumulative(data), "cumulative detections per pattern by evaluation point")}
{detections_table}</section>

<section id="merchants"><h2>Merchants and customers behind the detections</h2>
{_img(chart_merchants(tops, patterns), "top merchants by detections per pattern")}
<div class="grid2">{"".join(merchant_tables)}</div>
<h3>Customers detected most often</h3>{customer_table}</section>

<section id="latency"><h2>Per-chunk latency</h2>
<p class="sub">landed → applied: from the chunk's S3 put event reaching the detector to its
transaction committing (includes waiting for earlier chunks); YStartTime → applied: the
chunk's own application.</p>
{_img(chart_latency(data), "per-chunk latency by chunk index")}
{latency_table}<h3>Slowest chunks</h3>{slow_table}</section>

<section id="rejects"><h2>Rejects by reason</h2>
<p class="sub">{len(data.rejects):,} rejected records in
{len({r.chunk for r in data.rejects}):,} chunks (values in reasons grouped as …).</p>
{_img(chart_rejects(reasons), "rejected records by reason")}
{reject_table}</section>

<footer>generated by txnpipe report at {_e(generated)}</footer>
</main></body></html>
"""


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
