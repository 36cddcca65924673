"""The scaling curve's target checks, its section of ``docs/benchmarks.md`` and its plot."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from scaling import ENGINES

# Issue 18's targets on this 2-core machine, for the 10x point.
TARGETS = {  # engine -> (seconds, whole-tree MB)
    "duckdb": (90.0, 3000.0),
    "spark": (15 * 60.0, 6000.0),
}
RUN_TREE_MB = 2500.0  # the 10x local run's whole tree
FLAT_AFTER_WARMUP = 1.2  # its peak in the last quarter of the run over that in the second
NEAR_LINEAR = 4.0  # the cost from 3x to 10x at most (10/3 would be exactly linear)
LABELS = {"run": "txnpipe run --fast (inline, end to end)", "duckdb": "backfill, DuckDB",
          "spark": "backfill, Spark local[2]"}  # fmt: skip


def quarters(timeline: list[list[float]]) -> list[tuple[float, float]]:
    """The peak (tree PSS MB, own process PSS MB) in each quarter of a run's wall time."""
    end = timeline[-1][0] if timeline else 0.0
    out = []
    for q in range(4):
        inside = [s for s in timeline if q * end / 4 <= s[0] <= (q + 1) * end / 4] or [[0, 0, 0]]
        out.append((max(s[1] for s in inside), max(s[2] for s in inside)))
    return out


def _at(points: list[dict[str, Any]], scale: int) -> dict[str, Any] | None:
    return next((p for p in points if p["scale"] == scale), None)


def checks(points: list[dict[str, Any]], check: Any) -> list[Any]:
    """``check`` is ``report.Check`` (passed in: report imports this module)."""
    out = []
    ten, three = _at(points, 10), _at(points, 3)
    if ten is None:
        return out
    for engine in ENGINES:
        m, (seconds, mb) = ten[engine], TARGETS[engine]
        out.append(check(f"10x backfill, {engine}: equal to the inline run (exit 0)",
                         f"exit {m['returncode']}", "exit 0", m["returncode"] == 0))  # fmt: skip
        out.append(check(f"10x backfill, {engine}: seconds", f"{m['seconds']:.0f} s",
                         f"< {seconds:.0f} s", m["seconds"] < seconds))  # fmt: skip
        out.append(check(f"10x backfill, {engine}: whole-tree peak (PSS)",
                         f"{m['peak_tree_mb']:.0f} MB",
                         f"< {mb:.0f} MB", m["peak_tree_mb"] < mb))  # fmt: skip
    run = ten["run"]
    out.append(check("10x `txnpipe run --fast`: whole-tree peak (PSS)",
                     f"{run['peak_tree_mb']:.0f} MB",
                     f"< {RUN_TREE_MB:.0f} MB", run["peak_tree_mb"] < RUN_TREE_MB))  # fmt: skip
    if run.get("timeline"):
        q = quarters(run["timeline"])
        for i, who in enumerate(("whole tree", "`txnpipe` process")):
            growth = q[3][i] / q[1][i] if q[1][i] else float("inf")
            out.append(check(f"10x `txnpipe run --fast`: {who} after warm-up (peak of the last"
                             " quarter / of the second)",
                             f"{growth:.2f} ({q[3][i]:.0f} / {q[1][i]:.0f} MB)",
                             f"<= {FLAT_AFTER_WARMUP}", growth <= FLAT_AFTER_WARMUP))  # fmt: skip
    if three is not None:
        for who in ("run", *ENGINES):
            ratio = ten[who]["seconds"] / three[who]["seconds"]
            out.append(check(f"{who}: cost 3x -> 10x", f"{ratio:.2f}x", f"<= {NEAR_LINEAR:.0f}x",
                             ratio <= NEAR_LINEAR))  # fmt: skip
    return out


def section(points: list[dict[str, Any]], plot_name: str | None) -> list[str]:
    if not points:
        return []
    lines = [
        "## Scaling: the inline run and the batch engines at 1x, 3x, 10x",
        "",
        (
            "Each figure is one `txnpipe` process measured as a whole tree (`bench/tree_memory.py`:"
            " the memory of the process and all its descendants summed every 0.2 s; the peak is"
            " the PSS sum, a page shared by n processes counting 1/n in each, and in brackets"
            " the RSS sum, shared pages counted in every process, an upper bound; the targets"
            " are checked on PSS): `txnpipe run --fast` on"
            " its own embedded PostgreSQL (the server is in the tree), then `txnpipe backfill` of"
            " that run's folder with each engine (DuckDB's walk workers and Spark's JVM are in the"
            " tree). Backfill exit 0 means the engine's detections equal the inline run's files"
            " row for row."
        ),
        "",
        "| scale | records | " + " | ".join(LABELS[w] for w in ("run", *ENGINES)) + " |",
        "| ---: | ---: | " + " | ".join("---:" for _ in ("run", *ENGINES)) + " |",
    ]
    for p in points:
        cells = [f"{p[w]['seconds']:.1f} s, {p[w]['peak_tree_mb'] / 1024:.2f} GB"
                 f" ({p[w]['peak_tree_rss_mb'] / 1024:.2f} GB RSS)"
                 + ("" if p[w]["returncode"] == 0 else f" (exit {p[w]['returncode']})")
                 for w in ("run", *ENGINES)]  # fmt: skip
        lines.append(f"| {p['scale']}x | {p['rows']:,} | " + " | ".join(cells) + " |")
    lines.append("")
    ten = _at(points, 10)
    if ten is not None and ten["run"].get("timeline"):
        q = quarters(ten["run"]["timeline"])
        lines += [
            (
                "The 10x run's memory over time (peak PSS in each quarter of its wall time; the"
                " whole tree, then the `txnpipe` process alone, which holds the in-process S3;"
                " the rest is the embedded server, whose shared buffers fill up to their size,"
                " an eighth of the machine's memory up to 256 MB):"
            ),
            "",
            "| quarter | 1st | 2nd | 3rd | 4th |",
            "| --- | ---: | ---: | ---: | ---: |",
            "| whole tree | " + " | ".join(f"{t:.0f} MB" for t, _ in q) + " |",
            "| `txnpipe` process | " + " | ".join(f"{p:.0f} MB" for _, p in q) + " |",
            "",
        ]
    if plot_name:
        lines += [f"![scaling]({plot_name})", ""]
    return lines


def plot(points: list[dict[str, Any]], path: Path) -> None:
    """Wall time and whole-tree peak against records, log-log, one line per command."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (wall, memory, over_time) = plt.subplots(1, 3, figsize=(16, 4))
    xs = [p["rows"] for p in points]
    for i, who in enumerate(("run", *ENGINES)):
        wall.plot(xs, [p[who]["seconds"] for p in points], "o-", color=f"C{i}", label=LABELS[who])
        memory.plot(xs, [p[who]["peak_tree_mb"] / 1024 for p in points], "o-", color=f"C{i}",
                    label=LABELS[who])  # fmt: skip
    if len(xs) > 1:  # exactly linear from the first point, for the eye
        first = points[0]["run"]["seconds"]
        wall.plot(xs, [first * x / xs[0] for x in xs], ":", color="grey", label="linear")
    wall.set(title="Wall time", xlabel="records", ylabel="s", xscale="log", yscale="log")
    memory.set(title="Whole-tree peak memory (PSS)", xlabel="records", ylabel="GB",
               xscale="log")  # fmt: skip
    last = points[-1]
    timeline = last["run"].get("timeline") or [[0, 0, 0]]
    over_time.plot([s[0] for s in timeline], [s[1] / 1024 for s in timeline], color="C0",
                   label="whole tree")  # fmt: skip
    over_time.plot([s[0] for s in timeline], [s[2] / 1024 for s in timeline], color="C3",
                   label="`txnpipe` process")  # fmt: skip
    over_time.set(title=f"{last['scale']}x `txnpipe run --fast`: memory over time (PSS)",
                  xlabel="s", ylabel="GB")  # fmt: skip
    for ax in (wall, memory, over_time):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
