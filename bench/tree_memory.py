"""A command's wall time and the peak memory of its whole process tree.

One process's ``ru_maxrss`` misses what a command starts: the JVM of a local Spark and its
Python workers, an embedded PostgreSQL and its backends. So the tree is sampled: every
``interval`` seconds the memory of the command and all its descendants (``/proc/*/stat``
parents) is summed, and the largest sum is the peak. Two sums are kept:

- PSS (``/proc/PID/smaps_rollup``): each page shared by n processes counts 1/n in each, so
  the sum is what the tree holds. PostgreSQL's backends all map its shared buffers, and
  worker processes share their parent's pages, so this is the figure for a whole tree;
- RSS: each process's resident pages in full, so shared pages count once per process: an
  upper bound, shown beside it.

A peak says nothing of whether memory keeps growing, so the samples are kept too, one a
second: (seconds, the tree's PSS, the command's own process's PSS).
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_tree_mb: float  # the largest PSS sum over the tree
    peak_tree_rss_mb: float  # the largest RSS sum (shared pages counted per process)
    returncode: int
    processes: int  # the most processes seen in the tree at once
    timeline: list[tuple[float, float, float]]  # (seconds, tree PSS MB, root PSS MB) per second


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process readable now."""
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry.name)] = int(fields[1])
    return out


def _memory_bytes(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process; zeros for one gone between the listing and the read."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0, 0
    fields = {line.split(":")[0]: line.split()[1] for line in rollup[1:] if ":" in line}
    try:
        return int(fields["Pss"]) * 1024, int(fields["Rss"]) * 1024
    except (KeyError, ValueError):
        return 0, 0


def tree(root: int) -> list[int]:
    """``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def measure(argv: Sequence[str], interval: float = 0.2, log: Path | None = None,
            env: dict[str, str] | None = None) -> Measured:  # fmt: skip
    """Run ``argv`` to its end; its output goes to ``log`` (or is discarded)."""
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    started = time.perf_counter()
    process = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env)
    peak = peak_rss = most = 0
    timeline: list[tuple[float, float, float]] = []
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_rss, most
        while not done.is_set():
            pids = tree(process.pid)
            sizes = [_memory_bytes(p) for p in pids]
            pss = sum(pss for pss, _ in sizes)
            peak = max(peak, pss)
            peak_rss = max(peak_rss, sum(rss for _, rss in sizes))
            most = max(most, len(pids))
            at = time.perf_counter() - started
            if not timeline or at - timeline[-1][0] >= 1.0:
                timeline.append((round(at, 1), pss / 2**20, sizes[0][0] / 2**20))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = process.wait()
    finally:
        done.set()
        sampler.join()
        if log is not None:
            out.close()  # type: ignore[union-attr]
    return Measured(time.perf_counter() - started, peak / 2**20, peak_rss / 2**20, code, most,
                    timeline)  # fmt: skip


if __name__ == "__main__":
    import sys

    result = measure(sys.argv[1:])
    print(f"{result.seconds:.1f} s, peak tree {result.peak_tree_mb:.0f} MB PSS"
          f" ({result.peak_tree_rss_mb:.0f} MB RSS), {result.processes} processes,"
          f" exit {result.returncode}")  # fmt: skip
