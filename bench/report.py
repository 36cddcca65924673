"""Turn one run's measurements into target checks, ``docs/benchmarks.md`` and the plot.

Every ratio is between figures measured in the same process run on the same machine, so
noise from a shared machine affects both sides alike; absolute seconds are shown too.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import scaling_report

FLAT_DETECTOR = 1.3  # median of the last 50 chunks / median of chunks 10..59
FLAT_CHUNKER = 1.2  # median of the last 10 ticks / median of ticks 0..10
REPLAY_SECONDS = 30.0
PEER_SPEEDUP = 2.0  # txnpipe end to end against the in-process DuckDB peer
SPEEDUP = 20.0
RSS_MB = 512.0
RECORDS_PER_SECOND = 50_000.0
CATCH_UP_PER_SECOND = 150_000.0  # a backlog of landed chunks, drained by the detector


def machine(db_url: str) -> dict[str, Any]:
    """What the figures were measured on (a shared machine: the load average is noted too)."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())  # fmt: skip
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))  # fmt: skip
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        buffers = conn.execute("SHOW shared_buffers").fetchone()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kb / 2**20, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "postgresql": row[0] if row else "?",
        "shared_buffers": buffers[0] if buffers else "?",
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def code_version(root: Path) -> str:
    """The commit measured, and whether txnpipe/ had uncommitted changes (others edit it)."""
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "txnpipe").splitlines()
    changes = f" plus {len(dirty)} uncommitted change(s) under txnpipe/" if dirty else ""
    return commit + changes


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def p95(xs: list[float]) -> float:
    return sorted(xs)[int(0.95 * (len(xs) - 1))] if xs else float("nan")


def detector_flatness(costs: list[float]) -> tuple[float, float, float]:
    """(median of chunks 10..59, median of the last 50 chunks, their ratio)."""
    early, late = median(costs[10:60]), median(costs[-50:])
    return early, late, late / early


def chunker_flatness(ticks: list[float]) -> tuple[float, float, float]:
    """(median of ticks 0..10, median of the last 10 ticks, their ratio)."""
    early, late = median(ticks[:11]), median(ticks[-10:])
    return early, late, late / early


@dataclass(frozen=True)
class Check:
    name: str
    measured: str
    target: str
    ok: bool
    expected_to_fail: bool = False  # the baseline's flatness: it is meant to grow

    @property
    def verdict(self) -> str:
        if self.expected_to_fail:
            return "PASS (does not grow)" if self.ok else "FAIL (grows, as expected)"
        return "PASS" if self.ok else "FAIL"


def checks(r: dict[str, Any]) -> list[Check]:
    rep, base, ticks = r["replay"], r["baseline"], r["chunker"]["ticks"]
    t_total = sum(rep["detector"]) + sum(ticks)
    b_total = sum(base["detector"]) + sum(base["chunker"])
    out = [
        Check("full replay (`txnpipe run --fast`), seconds", f"{rep['seconds']:.1f} s",
              f"< {REPLAY_SECONDS:.0f} s", rep["seconds"] < REPLAY_SECONDS),
        Check("baseline / txnpipe, detector + chunker totals", f"{b_total / t_total:.1f}x",
              f">= {SPEEDUP:.0f}x", b_total / t_total >= SPEEDUP),
        Check("baseline / txnpipe, end to end", f"{base['seconds'] / rep['seconds']:.1f}x",
              f">= {SPEEDUP:.0f}x", base["seconds"] / rep["seconds"] >= SPEEDUP),
    ]  # fmt: skip
    for who, costs, tick_list, expected in (
        ("txnpipe", rep["detector"], ticks, False),
        ("baseline", base["detector"], base["chunker"], True),
    ):
        e, l, ratio = detector_flatness(costs)
        out.append(Check(f"{who} detector flatness: median {_last(costs, 50, 'chunks')}"
                         " / median chunks 10..59",
                         f"{ratio:.2f} ({l * 1e3:.1f} / {e * 1e3:.1f} ms)",
                         f"<= {FLAT_DETECTOR}", ratio <= FLAT_DETECTOR, expected))  # fmt: skip
        e, l, ratio = chunker_flatness(tick_list)
        out.append(Check(f"{who} chunker flatness: median {_last(tick_list, 10, 'ticks')}"
                         " / median ticks 0..10",
                         f"{ratio:.2f} ({l * 1e3:.1f} / {e * 1e3:.1f} ms)",
                         f"<= {FLAT_CHUNKER}", ratio <= FLAT_CHUNKER, expected))  # fmt: skip
    if r.get("scale"):
        s = r["scale"]
        e, l, ratio = detector_flatness(s["detector"])
        out.append(Check(f"10x detector flatness: median {_last(s['detector'], 50, 'chunks')}"
                         " / median chunks 10..59",
                         f"{ratio:.2f} ({l * 1e3:.1f} / {e * 1e3:.1f} ms)",
                         f"<= {FLAT_DETECTOR}", ratio <= FLAT_DETECTOR))  # fmt: skip
        out.append(Check("10x detector process peak RSS", f"{s['peak_rss_mb']:.0f} MB",
                         f"< {RSS_MB:.0f} MB", s["peak_rss_mb"] < RSS_MB))  # fmt: skip
        rate = s["rows"] / s["seconds"]
        out.append(Check("catch-up: records/s through the detector on the 10x backlog",
                         f"{rate:,.0f}/s", f">= {CATCH_UP_PER_SECOND:,.0f}/s",
                         rate >= CATCH_UP_PER_SECOND))  # fmt: skip
    k = r["rows10k"]
    detector_rate = sum(k["records"]) / sum(k["detector"])
    if (peer := r.get("peer")) is not None:
        out.append(Check("the DuckDB peer's detections equal txnpipe's",
                         "yes" if peer["same_detections"] else "NO", "yes",
                         peer["same_detections"]))  # fmt: skip
        speedup = peer_speedup(peer, rep)
        out.append(Check("DuckDB peer / txnpipe, end to end (median of side-by-side pairs)"
                         if "pairs" in peer else "DuckDB peer / txnpipe, end to end",
                         f"{speedup:.2f}x",
                         f">= {PEER_SPEEDUP:.0f}x", speedup >= PEER_SPEEDUP))  # fmt: skip
    out += _real_checks(r.get("real"))
    out += scaling_report.checks(r.get("scaling") or [], Check)
    out.append(Check("chunk_rows=10000: records/s through the detector",
                     f"{detector_rate:,.0f}/s", f">= {RECORDS_PER_SECOND:,.0f}/s",
                     detector_rate >= RECORDS_PER_SECOND))  # fmt: skip
    return out


def peer_speedup(peer: dict[str, Any], rep: dict[str, Any]) -> float:
    """The peer's time over txnpipe's: the median of the side-by-side pairs' ratios (pages
    before the pairs: the one peer run over the replay)."""
    if "pairs" not in peer:
        return float(peer["seconds"] / rep["seconds"])
    return float(statistics.median(theirs / ours for ours, theirs in peer["pairs"]))


def _peer_line(peer: dict[str, Any] | None, replay_seconds: float) -> list[str]:
    if peer is None:
        return []
    if "pairs" in peer:
        timed = ", ".join(f"{theirs:.1f} s against txnpipe's {ours:.1f} s"
                          for ours, theirs in peer["pairs"])  # fmt: skip
        timed = f"in {len(peer['pairs'])} pairs, each right after a txnpipe replay: {timed}"
    else:
        timed = f"in {peer['seconds']:.1f} s (txnpipe {replay_seconds:.1f} s)"
    line = (f"- DuckDB peer (`bench/peer.py`: in-process, incremental aggregates, no S3, no"
            f" durable state): {peer['detections']} detections, end to end {timed};"
            f" same set as txnpipe: **{'yes' if peer['same_detections'] else 'NO'}**")  # fmt: skip
    return [line]


def _real_checks(real: dict[str, Any] | None) -> list[Check]:
    """On the real records: the peer equal and timed as on the generated stream, and each
    engine's backfill equal to the inline run."""
    if not real or "missing" in real:
        return []
    peer, speedup = real["peer"], peer_speedup(real["peer"], real)
    out = [
        Check("real data: the DuckDB peer's detections equal txnpipe's",
              "yes" if peer["same_detections"] else "NO", "yes", peer["same_detections"]),
        Check("real data: DuckDB peer / txnpipe, end to end (median of side-by-side pairs)",
              f"{speedup:.2f}x", f">= {PEER_SPEEDUP:.0f}x", speedup >= PEER_SPEEDUP),
    ]  # fmt: skip
    for engine in scaling_report.ENGINES:
        if engine in real.get("engines", {}):
            code = real["engines"][engine]["returncode"]
            out.append(Check(f"real data: backfill, {engine}: equal to the inline run (exit 0)",
                             f"exit {code}", "exit 0", code == 0))  # fmt: skip
    return out


def _real_section(real: dict[str, Any] | None) -> list[str]:
    if real is None:  # a page from before the real records were measured
        return []
    lines = ["## Real BankSim records", ""]
    if "missing" in real:
        return [*lines, f"Not measured: the real records are not at `{real['missing']}`.", ""]
    found = ", ".join(f"{k} {v}" for k, v in real["detections"].items()) or "none"
    lines += [
        (
            f"- the first {real['rows']:,} records of BankSim's `bs140513_032310.csv` and an"
            " importance file derived from them, read from"
            f" `{real['source']}` (not part of the repository); {real['chunks']} chunks,"
            f" input {real['mb']:.1f} MB"
        ),
        (
            f"- txnpipe replay (`txnpipe run --fast`, in this process): {real['seconds']:.1f} s;"
            f" detections: {found}; {real['rejects']} rejected records"
        ),
        *_peer_line(real["peer"], real["seconds"]),
        "",
    ]
    if engines := real.get("engines"):
        rows = [f"| {scaling_report.LABELS[k]} | {m['seconds']:.1f} | {m['peak_tree_mb']:.0f} MB"
                f" | {m['returncode']} |" for k, m in engines.items()]  # fmt: skip
        lines += [
            (
                "Each a separate process on its own embedded server, measured as a whole tree, as"
                " on the scaling curve (exit 0: the engine's detections equal the inline run's,"
                " file for file):"
            ),
            "",
            "| command | seconds | whole-tree peak (PSS) | exit |",
            "| --- | ---: | ---: | ---: |",
            *rows,
            "",
        ]
    return lines


def _last(xs: list[float], n: int, what: str) -> str:
    """"chunks 545..594": the window that "the last n" means for this series."""
    return f"{what} {max(0, len(xs) - n)}..{len(xs) - 1}"


def _ms(xs: list[float]) -> str:
    return (f"{median(xs) * 1e3:.1f} / {p95(xs) * 1e3:.1f} / {max(xs) * 1e3:.1f}"
            if xs else "n/a")  # fmt: skip


def render(r: dict[str, Any], plot_name: str | None, scaling_plot: str | None = None) -> str:
    """The markdown page: machine, figures, checks, plot."""
    m, d, rep, base = r["machine"], r["data"], r["replay"], r["baseline"]
    ticks = r["chunker"]["ticks"]
    t_det, t_chk = sum(rep["detector"]), sum(ticks)
    b_det, b_chk = sum(base["detector"]), sum(base["chunker"])
    lines = [
        "# Benchmarks",
        "",
        (
            "Generated by `make bench` (`bench/run.py`); every ratio below is between figures"
            " measured in that one run. Do not edit by hand: rerun the bench."
        ),
        "",
    ]
    if r["quick"]:
        lines += [
            (
                "> **Quick smoke run** (`--quick`): small data, so the flatness windows overlap"
                " and the targets are not meaningful."
            ),
            "",
        ]
    lines += [
        "## Machine",
        "",
        f"- date: {r['date']}",
        f"- CPU: {m['cpu']}, {m['nproc']} CPUs (`nproc`); memory {m['memory_gib']} GiB",
        (
            f"- Python {m['python']}, PostgreSQL {m['postgresql']} (embedded, `pgserver`,"
            f" shared_buffers {m.get('shared_buffers', '128MB')}), S3: moto in-process"
        ),
        f"- txnpipe code: {r.get('code', 'unknown')}",
        (
            f"- load average at start: {', '.join(map(str, m['load_average']))}"
            " (a shared machine: absolute times are noisy, same-run ratios less so)"
        ),
        "",
        "## Data",
        "",
        (
            f"- {d['rows']:,} records (generated BankSim layout, `txnpipe.tools.generate`, seed 7),"
            f" {d['chunks']} chunks of 1,000; input {d['mb']:.1f} MB"
        ),
        (
            f"- txnpipe detections: {', '.join(f'{k} {v}' for k, v in rep['detections'].items())};"
            f" {rep['rejects']} rejected records"
        ),
        *_peer_line(r.get("peer"), r["replay"]["seconds"]),
        (
            f"- baseline detections: {base['detections']};"
            f" same (chunk, pattern, merchant, customer) set as txnpipe: "
            f"**{'yes' if base['same_detections'] else 'NO'}**"
        ),
        "",
        "## Target checks",
        "",
        "| check | measured | target | result |",
        "| --- | --- | --- | --- |",
        *[f"| {c.name} | {c.measured} | {c.target} | {c.verdict} |" for c in checks(r)],
        "",
        "## txnpipe vs the recompute-everything baseline (same data, same server)",
        "",
        (
            "txnpipe: `txnpipe.local.runner.run` (`--fast`); detector per chunk ="
            " `chunk_log.applied_at - y_start` (aggregate upserts, PatId1 ranks, detections;"
            " the chunk's GET, parse and history insert are done ahead by the prefetch thread on"
            " its own connection, see Notes); chunker per tick ="
            " `run_tick(max_chunks=1)` run alone over the same file. Baseline"
            " (`bench/baseline.py`): each tick GETs the whole file and slices lines; each chunk is"
            " appended to `all_transactions` and every pattern is recomputed over it in SQL. The"
            " baseline runs its chunker and detector one after the other; the runner overlaps"
            " them in two threads."
        ),
        "",
        "| seconds | txnpipe | baseline | baseline / txnpipe |",
        "| --- | ---: | ---: | ---: |",
        f"| detector, sum over chunks | {t_det:.2f} | {b_det:.1f} | {b_det / t_det:.1f}x |",
        f"| chunker, sum over ticks | {t_chk:.2f} | {b_chk:.1f} | {b_chk / t_chk:.1f}x |",
        (
            f"| detector + chunker | {t_det + t_chk:.2f} | {b_det + b_chk:.1f}"
            f" | {(b_det + b_chk) / (t_det + t_chk):.1f}x |"
        ),
        (
            f"| end to end | {rep['seconds']:.2f} | {base['seconds']:.1f}"
            f" | {base['seconds'] / rep['seconds']:.1f}x |"
        ),
        "",
        "| per chunk, ms (median / p95 / max) | txnpipe | baseline |",
        "| --- | ---: | ---: |",
        f"| detector, all chunks | {_ms(rep['detector'])} | {_ms(base['detector'])} |",
        (
            f"| detector, chunks 10..59 | {_ms(rep['detector'][10:60])}"
            f" | {_ms(base['detector'][10:60])} |"
        ),
        (
            f"| detector, {_last(rep['detector'], 50, 'chunks')} | {_ms(rep['detector'][-50:])}"
            f" | {_ms(base['detector'][-50:])} |"
        ),
        f"| chunker, ticks 0..10 | {_ms(ticks[:11])} | {_ms(base['chunker'][:11])} |",
        (
            f"| chunker, {_last(ticks, 10, 'ticks')} | {_ms(ticks[-10:])}"
            f" | {_ms(base['chunker'][-10:])} |"
        ),
        "",
    ]
    if plot_name:
        lines += [f"![per-chunk cost]({plot_name})", ""]
    lines += _scale_section(r) + _rows10k_section(r) + _real_section(r.get("real"))
    lines += scaling_report.section(r.get("scaling") or [], scaling_plot) + _notes()
    return "\n".join(lines)


def _scale_section(r: dict[str, Any]) -> list[str]:
    s = r.get("scale")
    if not s:
        return ["## 10x scale", "", "Skipped (`--skip-scale`).", ""]
    gen = f"{s['generate_seconds']:.0f} s" if s["generate_seconds"] is not None else "cached"
    return [
        "## 10x scale (txnpipe only)",
        "",
        f"- {s['rows']:,} records ({s['mb']:.0f} MB), {s['chunks']} chunks; data generation: {gen}",
        f"- chunker, all chunks in one go: {s['chunker_seconds']:.1f} s",
        (
            f"- detector in a separate spawned process, every chunk landed before it starts"
            f" (a backlog), events of {s['keys_per_event']} keys: {s['seconds']:.1f} s"
            f" ({s['rows'] / s['seconds']:,.0f} records/s); per chunk median / p95 / max:"
            f" {_ms(s['detector'])} ms;"
            f" chunks 10..59 {median(s['detector'][10:60]) * 1e3:.1f} ms,"
            f" {_last(s['detector'], 50, 'chunks')} {median(s['detector'][-50:]) * 1e3:.1f} ms"
        ),
        (
            f"- detector process RSS: peak {s['peak_rss_mb']:.0f} MB (`ru_maxrss`; VmHWM"
            f" {s['hwm_rss_mb']:.0f} MB); after the first event (weights loaded)"
            f" {s['rss_after_first_event_mb']:.0f} MB{_first_peak(s)}; at the end"
            f" {s['rss_end_mb']:.0f} MB."
            " The process is spawned before the bench loads anything, because Linux carries a"
            " parent's RSS high-water mark into a child's `ru_maxrss` across fork and exec."
        ),
        *_cpu_line(s),
        "",
    ]


def _cpu_line(s: dict[str, Any]) -> list[str]:
    """Where the backlog's CPU went, and the rate the machine's cores allow for that work."""
    cpu = s.get("cpu")
    if cpu is None:
        return []
    per_chunk = {k: v / s["chunks"] for k, v in cpu.items()}
    total = sum(per_chunk.values())
    cores = s["cores"]
    ceiling = cores / total * s["rows"] / s["chunks"]
    return [(
        f"- CPU per chunk over the backlog: detector process {per_chunk['detector'] * 1e3:.1f} ms,"
        f" its two PostgreSQL backends (apply, staging) {per_chunk['postgres'] * 1e3:.1f} ms,"
        f" the S3 server (moto, in the bench's process) {per_chunk['s3'] * 1e3:.1f} ms:"
        f" {total * 1e3:.1f} ms in all, so {cores} cores can apply at most"
        f" {ceiling:,.0f} records/s of this work however it is overlapped"
        f" ({s['rows'] / s['seconds'] / ceiling:.0%} of that reached); PostgreSQL's share alone"
        f" allows {cores / per_chunk['postgres'] * s['rows'] / s['chunks']:,.0f} records/s"
    )]


def _first_peak(s: dict[str, Any]) -> str:
    """The peak reached by the end of the first event, which loads the importance weights."""
    hwm = s.get("hwm_after_first_event_mb")
    return f" (peak by then {hwm:.0f} MB)" if hwm else ""


def _rows10k_section(r: dict[str, Any]) -> list[str]:
    k = r["rows10k"]
    return [
        "## chunk_rows=10000 (`--set chunk_rows=10000`)",
        "",
        (
            f"- {sum(k['records']):,} records in {len(k['records'])} chunks; end to end"
            f" {k['seconds']:.1f} s ({sum(k['records']) / k['seconds']:,.0f} records/s)"
        ),
        (
            f"- detector: {sum(k['detector']):.2f} s over all chunks"
            f" ({sum(k['records']) / sum(k['detector']):,.0f} records/s); per chunk median / p95 /"
            f" max {_ms(k['detector'])} ms"
        ),
        "",
    ]


def _notes() -> list[str]:
    return [
        "## Notes",
        "",
        (
            "- moto serves a ranged GET by reading the whole object and slicing it, so in this"
            " local setup the txnpipe chunker's occasional read-ahead GET (one per 16 MiB in a"
            " local run, about every 170 chunks) costs O(file) inside moto; real S3 does not. A"
            " window's median is barely moved by it (at most one such tick in ten)."
        ),
        (
            "- Per-chunk detector cost does not include writing the 100-row detection files (done"
            " after the chunk's transaction) nor the chunk's GET, parse and history and customers"
            " insert (staged by the prefetch thread while the previous chunk is applied, so off"
            " the critical path); the end-to-end times include everything, and the sums compare"
            " like with like only end to end."
        ),
        "",
    ]


def plot(r: dict[str, Any], path: Path) -> None:
    """Per-chunk detector cost and chunker tick cost, both designs, log y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(ax: Any, xs: list[float], label: str, color: str) -> None:
        """Raw points, faint (the machine is noisy), and a rolling median of 25 on top."""
        ms = [x * 1e3 for x in xs]
        smooth = [median(ms[max(0, i - 12) : i + 13]) for i in range(len(ms))]
        ax.plot(ms, lw=0.5, alpha=0.35, color=color)
        ax.plot(smooth, lw=1.6, color=color, label=f"{label} (rolling median of 25)")

    rep, base, ticks = r["replay"], r["baseline"], r["chunker"]["ticks"]
    panels = 3 if r.get("scale") else 2
    fig, axes = plt.subplots(panels, 1, figsize=(10, 3.6 * panels))
    series(axes[0], base["detector"], "baseline: recompute everything", "C0")
    series(axes[0], rep["detector"], "txnpipe: incremental", "C1")
    axes[0].set(title="Detector cost per chunk", xlabel="chunk", ylabel="ms", yscale="log")
    series(axes[1], base["chunker"], "baseline: GET whole file", "C0")
    series(axes[1], ticks, "txnpipe: ranged GET from the stored offset", "C1")
    axes[1].set(title="Chunker cost per tick", xlabel="tick (chunk written)", ylabel="ms",
                yscale="log")  # fmt: skip
    if r.get("scale"):
        s = r["scale"]
        series(axes[2], s["detector"], "txnpipe, 10x data", "C1")
        axes[2].set(title=f"txnpipe detector cost per chunk at 10x ({s['rows']:,} records)",
                    xlabel="chunk", ylabel="ms", yscale="log")  # fmt: skip
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
