"""``txnpipe`` as a separate process, for the tests of what happens between processes: two
runs at once, a killed server, a signal."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

COMMAND = [sys.executable, "-m", "txnpipe"]


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default disposition. A shell without job
    control starts background commands with SIGINT ignored, and an ignored signal stays
    ignored across exec (Python then installs no KeyboardInterrupt handler): the tests that
    send SIGINT to a run must not depend on how the test process itself was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*COMMAND, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)  # noqa: PLW1509 - only a signal disposition


def finish(process: subprocess.Popen[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Wait for a started process; its output, as ``call`` gives it."""
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def call(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def run_args(transactions: Path | Sequence[Path], importance: Path, out: Path,
             *extra: str | Path) -> list[str | Path]:  # fmt: skip
    files = [transactions] if isinstance(transactions, Path) else list(transactions)
    return ["run", *(a for f in files for a in ("--transactions", f)), "--importance", importance,
            "--out", out, *extra]  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)


def files_under(folder: Path, pattern: str = "*") -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


def postgres_serving(data_dir: Path) -> list[int]:
    """Pids of postgres processes whose command line names ``data_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and str(data_dir.resolve()).encode() in argv:
            found.append(int(entry.name))
    return found


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid in ``postmaster.pid``, None while there is none."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def one_line_error(stderr: str) -> str:
    """The only line on stderr, which must be a txnpipe error (never a traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("txnpipe: error: "), stderr
    return lines[0]
