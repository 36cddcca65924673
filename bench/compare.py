"""The detector's per-chunk cost of this tree against an earlier revision, measured in one run.

Usage: python bench/compare.py REV [--rounds N] [--rows N]

Checks REV out in a temporary git worktree and replays the same generated data with
``txnpipe run --fast`` (embedded PostgreSQL, in-process moto) alternately with REV's code and
this tree's, ``--rounds`` times each, so that a slow moment of the shared machine hits both
alike. The per-chunk cost is what each run's ``run.json`` records: from when the detector took
a chunk up (``y_start``) to its commit (``applied_at``). Prints each round's median and the
ratio of the medians (this tree / REV).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _per_chunk_ms(run_json: Path) -> list[float]:
    doc = json.loads(run_json.read_text())
    chunks = doc["streams"][0]["chunks"] if "streams" in doc else doc["chunks"]
    return [(datetime.fromisoformat(c["applied_at"]) - datetime.fromisoformat(c["y_start"]))
            .total_seconds() * 1000 for c in chunks]  # fmt: skip


def _replay(code: Path, cli_module: str, data: Path, out: Path) -> tuple[float, float]:
    """(median ms per chunk, seconds end to end) of one replay with the code in ``code``."""
    script = (f"import sys; sys.path.insert(0, {str(code)!r}); import runpy; "
              "sys.argv = ['txnpipe'] + sys.argv[1:]; "
              f"runpy.run_module({cli_module!r}, run_name='__main__')")
    command = [sys.executable, "-c", script,
               "run", "--transactions", str(data / "bs140513_032310.csv"),
               "--importance", str(data / "bsNET140513_032310.csv"), "--out", str(out), "--fast"]  # fmt: skip
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, cwd=code)
    return statistics.median(_per_chunk_ms(out / "run.json")), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rev")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=594_643)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="txnpipe-compare-") as tmp:
        work = Path(tmp)
        base = work / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.rev], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
        try:
            data = work / "data"
            subprocess.run([sys.executable, "-m", "txnpipe", "generate", "--out", str(data),
                            "--rows", str(args.rows)], cwd=ROOT, check=True, capture_output=True)  # fmt: skip
            old_cli = "txnpipe.cli" if (base / "txnpipe" / "cli.py").is_file() else "txnpipe"
            results: dict[str, list[tuple[float, float]]] = {"base": [], "this": []}
            for i in range(args.rounds):
                for name, code, cli in (("base", base, old_cli), ("this", ROOT, "txnpipe")):
                    results[name].append(_replay(code, cli, data, work / f"out-{name}-{i}"))
                    ms, seconds = results[name][-1]
                    print(f"round {i + 1} {name}: {ms:.2f} ms per chunk (median), {seconds:.1f} s",
                          flush=True)  # fmt: skip
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT,
                           check=False, capture_output=True)  # fmt: skip
    medians = {k: statistics.median(ms for ms, _ in v) for k, v in results.items()}
    print(f"{args.rev}: {medians['base']:.2f} ms; this tree: {medians['this']:.2f} ms; "
          f"ratio {medians['this'] / medians['base']:.3f}")


if __name__ == "__main__":
    main()
