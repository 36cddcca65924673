"""The report's HTML page: one self-contained document (styles inline, charts as data URIs)."""
from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from txnpipe.core.detections import IST
from txnpipe.tools.report.analysis import (
    is_merchant_rule,
    label,
    patterns_of,
    per_chunk_counts,
    quantile,
    reason_category,
    title,
    top_customers,
    top_merchants,
)
from txnpipe.tools.report.charts import (
    chart_cumulative,
    chart_latency,
    chart_merchants,
    chart_rejects,
)
from txnpipe.tools.report.folder import RejectRow, RunData

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


def _num(value: float | None, digits: int = 0) -> str:
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
    patterns = patterns_of(data)
    pair_patterns = [p for p in patterns if not is_merchant_rule(p)]
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
        *[(f"{by_pattern.get(p, 0):,}", title(p)) for p in patterns],
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
        firsts.append((*label(p), by_pattern.get(p, 0),
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
        if is_merchant_rule(p):
            headings = ["merchant", "detections", "first point"]
            rows = [(m.merchant, m.detections, _num(m.first_chunk)) for m in lines]
            numeric = {1, 2}
        else:
            headings = ["merchant", "detections", "customers", "first point", "last point"]
            rows = [(m.merchant, m.detections, m.customers, _num(m.first_chunk),
                     _num(m.last_chunk)) for m in lines]  # fmt: skip
            numeric = {1, 2, 3, 4}
        merchant_tables.append(
            f"<div><h3>{_e(title(p))}: top {top} merchants</h3>"
            + _table(headings, rows, numeric, ids={0}) + "</div>"
        )
    customers = top_customers(data.detections, top)
    customer_table = _table(
        ["customer", "detections", *[label(p)[0] for p in pair_patterns], "merchants",
         "first point"],
        [(c.customer, c.detections, *[c.by_pattern.get(p, 0) for p in pair_patterns],
          c.merchants, _num(c.first_chunk)) for c in customers],
        numeric=set(range(1, len(patterns) + 3)), ids={0},
    )  # fmt: skip

    # Latency.
    landed = [c.landed_to_applied for c in data.chunks if c.landed_to_applied is not None]
    apply = [c.start_to_applied for c in data.chunks]
    latency_rows = []
    for name, values in (("landed → applied", landed), ("YStartTime → applied", apply)):
        latency_rows.append((name, len(values),
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
