"""A command's wall time and the peak memory of its whole process tree.

One process's ``ru_maxrss`` misses what a command starts: the JVM of a local Spark and its
Python workers, an embedded PostgreSQL and its backends. So the tree is sampled: every
``interval`` seconds the RSS of the command and all its descendants (``/proc/*/stat``
parents) is summed, and the largest sum is the peak. A sum of RSS counts pages two processes
share twice, so it is an upper bound, the safe side for sizing.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_tree_mb: float
    returncode: int
    processes: int  # the most processes seen in the tree at once


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


def _rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0  # gone between the listing and the read


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
    peak, most = 0, 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, most
        while not done.is_set():
            pids = tree(process.pid)
            peak = max(peak, sum(_rss_bytes(p) for p in pids))
            most = max(most, len(pids))
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
    return Measured(time.perf_counter() - started, peak / 2**20, code, most)


if __name__ == "__main__":
    import sys

    result = measure(sys.argv[1:])
    print(f"{result.seconds:.1f} s, peak tree {result.peak_tree_mb:.0f} MB, "
          f"{result.processes} processes, exit {result.returncode}")  # fmt: skip
