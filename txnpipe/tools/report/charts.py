"""The report's four charts, drawn by matplotlib's Agg canvas (no pyplot, so no global state)
and returned as base64 PNG."""
from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Sequence
from typing import Any

from txnpipe.tools.report.analysis import MerchantLine, label, per_chunk_counts, title
from txnpipe.tools.report.folder import RunData

COLORS = {1: "#1f77b4", 2: "#ff7f0e", 3: "#2ca02c"}  # by pattern; any other is grey
OTHER_COLOR = "#7f7f7f"


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
        color = COLORS.get(pattern, OTHER_COLOR)
        if index:
            ax.step(index, running, where="post", color=color, linewidth=2)
            ax.fill_between(index, running, step="post", color=color, alpha=0.15)
        ax.set_title(f"{title(pattern)}: {total:,}", fontsize=11)
        _integer_axes(ax, "y")
        ax.set_xlabel("evaluation point (chunk)")
        if i == 0:
            ax.set_ylabel("cumulative detections")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    ax = fig.add_subplot(grid[1, :])
    bottom = [0] * len(index)
    for pattern in patterns:
        ax.bar(index, counts[pattern], bottom=bottom, width=0.85, label=label(pattern)[0],
               color=COLORS.get(pattern, OTHER_COLOR))  # fmt: skip
        bottom = [b + n for b, n in zip(bottom, counts[pattern])]
    ax.set_ylim(0, max(max(bottom, default=0), 1) * 1.12)
    ax.set_xlabel("evaluation point (chunk)")
    ax.set_ylabel("new detections")
    ax.set_title("new detections at each evaluation point", fontsize=11)
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    _integer_axes(ax, "xy")
    return _png(fig)


def chart_merchants(tops: dict[int, list[MerchantLine]], patterns: Sequence[int]) -> str:
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
                color=COLORS.get(pattern, OTHER_COLOR))  # fmt: skip
        ax.set_title(f"{title(pattern)}: top merchants", fontsize=11)
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
