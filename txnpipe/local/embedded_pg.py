"""The embedded PostgreSQL of a local run: started by txnpipe, and stopped however it ends.

The binaries come from the ``pgserver`` wheel; the process is ours. pgserver's own handle
loses track of a server restarted under it and leaves a data directory's server running
for ever, so txnpipe starts ``postgres`` itself, as a child that:

- holds its data directory exclusively: the owning process keeps an ``flock`` on the
  directory for as long as it runs, so a second run on the same ``--pg-data`` is refused
  (``txnpipe status`` only attaches to it), and the lock vanishes with its owner, however
  it dies;
- stops when its owner is gone: it is started with the parent-death signal SIGINT (fast
  shutdown), from one thread that lives as long as the process, so even a SIGKILL'd run
  leaves no server behind; and should one survive anyway (an older txnpipe, a kernel
  without the signal), the next owner of the directory finds it by ``postmaster.pid`` and
  stops it before starting its own;
- gets its settings on its command line (no restart to apply them).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from txnpipe.core.errors import TxnpipeError

_OWNER_FILE = "txnpipe-owner.pid"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0
# Starts happen on this one thread: the parent-death signal fires when the *thread* that
# forked the child ends, and this one lasts as long as the process.
_LAUNCHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="txnpipe-pg-launcher")


class DataDirectoryBusy(TxnpipeError):
    """Another live process owns the data directory."""


def _binaries() -> Path:
    # importing pgserver reads its runtime folder, which warns where XDG_RUNTIME_DIR is unset
    warnings.filterwarnings("ignore", module="platformdirs")
    from pgserver._commands import POSTGRES_BIN_PATH  # the wheel's PostgreSQL build

    return Path(POSTGRES_BIN_PATH)


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, it runs as pgserver's unprivileged user."""
    if os.geteuid() != 0:
        return None
    _binaries()
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _with_parent_death_signal(command: list[str]) -> list[str]:
    """The command, made to receive SIGINT (fast shutdown) when the launching thread dies:
    through util-linux's ``setpriv`` where there is one (no code runs between fork and exec
    in this multi-threaded process), else as it is (the next owner stops a leftover)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return command
    return [setpriv, "--pdeathsig", "INT", "--", *command]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class EmbeddedPostgres:
    """One data directory and the server on it; ``settings`` are passed as ``-c name=value``."""

    data_dir: Path
    settings: Mapping[str, str] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = None
    _socket_dir: Path | None = None
    _lock_fd: int | None = None

    @property
    def url(self) -> str:
        assert self._socket_dir is not None
        return f"postgresql://postgres@/postgres?host={self._socket_dir}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def own(self) -> None:
        """Take the directory for this process, or refuse with the owner's pid."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirectoryBusy(
                f"PostgreSQL data directory {str(self.data_dir)!r} is in use by another txnpipe "
                f"process (pid {owner_pid(self.data_dir) or 'unknown'})"
            ) from None
        self._lock_fd = fd

    def start(self) -> None:
        """Initialise the directory if new, stop a server left on it, start ours, wait for it."""
        assert self._lock_fd is not None, "own() the directory first"
        user = _system_user()
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb(user)
        (self.data_dir / _OWNER_FILE).write_text(f"{os.getpid()}\n")
        stop_leftover(self.data_dir)
        if self._socket_dir is None:  # kept across restarts, so that the URL stays the same
            self._socket_dir = Path(tempfile.mkdtemp(prefix="txnpipe-pg-"))
            if user is not None:
                shutil.chown(self._socket_dir, user)
        for attempt in range(10):
            self._process = _LAUNCHER.submit(self._spawn, user).result()
            if self._wait_ready():
                return
            # The server of a killed postmaster can leave backends that still hold its
            # shared memory for a moment; they exit as soon as they notice.
            time.sleep(0.5)
        raise TxnpipeError(f"embedded PostgreSQL exited at start: {self._log_tail()}")

    def _initdb(self, user: str | None) -> None:
        if user is not None:
            from pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)
            shutil.chown(self.data_dir, user)
        command = [str(_binaries() / "initdb"), "-D", str(self.data_dir), "--auth=trust",
                   "--auth-local=trust", "--encoding=utf8", "-U", "postgres"]  # fmt: skip
        done = subprocess.run(command, user=user, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise TxnpipeError(f"cannot create a PostgreSQL data directory in "
                               f"{str(self.data_dir)!r}: {last[0]}")  # fmt: skip

    def _spawn(self, user: str | None) -> subprocess.Popen[bytes]:
        assert self._socket_dir is not None
        command = [str(_binaries() / "postgres"), "-D", str(self.data_dir), "-h", "",
                   "-k", str(self._socket_dir)]  # fmt: skip
        for name, value in self.settings.items():
            command += ["-c", f"{name}={value}"]
        log = (self.data_dir / "log").open("ab")
        try:
            return subprocess.Popen(_with_parent_death_signal(command), user=user,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        finally:
            log.close()

    def _wait_ready(self) -> bool:
        """True once the server accepts connections, False if it exited."""
        import psycopg

        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                return False
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TxnpipeError("embedded PostgreSQL did not start within "
                                       f"{_START_TIMEOUT:.0f} s: {self._log_tail()}") from None  # fmt: skip
                time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            lines = (self.data_dir / "log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no log"

    def stop(self, immediate: bool = False) -> None:
        """Fast shutdown; immediate, then a kill, if it does not finish in time.

        ``immediate`` for data about to be deleted: a fast shutdown first writes every dirty
        buffer out in a checkpoint (with ``synchronous_commit=off``, an immediate one loses
        the last commits, which only a discarded directory can afford)."""
        process, self._process = self._process, None
        ladder = ((signal.SIGINT, _STOP_TIMEOUT), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0))
        if process is not None and process.poll() is None:
            for sig, wait in ladder[1:] if immediate else ladder:
                process.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(wait)
                    break

    def restart(self) -> None:
        self.stop()
        self.start()

    def release(self, discard: bool = False) -> None:
        """Stop the server and give the directory up; ``discard``: it is deleted next."""
        self.stop(immediate=discard)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                (self.data_dir / _OWNER_FILE).unlink()
            os.close(self._lock_fd)
            self._lock_fd = None


def owner_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / _OWNER_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _postmaster(data_dir: Path) -> tuple[int, Path | None] | None:
    """The pid and socket directory in ``postmaster.pid``, if a server is running there."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if not _alive(pid) or not _is_postgres_of(pid, data_dir):
        return None
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4].strip() else None
    return pid, socket_dir


def _is_postgres_of(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a postgres serving ``data_dir`` (a stale pid may be anything now)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (not Linux): trust postmaster.pid, as pg_ctl does
    return any(a.endswith(b"postgres") for a in argv) and str(data_dir).encode() in argv


def stop_leftover(data_dir: Path) -> bool:
    """Stop a server left running on ``data_dir`` by an owner that is gone; True if one was."""
    found = _postmaster(data_dir)
    if found is None:
        return False
    pid = found[0]
    for sig, wait in ((signal.SIGINT, _STOP_TIMEOUT), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _alive(pid):
            break
    return True


def attached_url(data_dir: Path) -> str | None:
    """The URL of a server another live process runs on ``data_dir`` (for ``txnpipe status``)."""
    found = _postmaster(data_dir)
    if found is None or found[1] is None:
        return None
    return f"postgresql://postgres@/postgres?host={found[1]}"


@contextlib.contextmanager
def embedded(data_dir: Path | None, settings: Mapping[str, str]) -> Iterator[EmbeddedPostgres]:
    """A server on ``data_dir`` (kept) or on a temporary directory (deleted), for the block."""
    with contextlib.ExitStack() as stack:
        discard = data_dir is None
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="txnpipe-pg-")))
            data_dir = data_dir / "data"
        server = EmbeddedPostgres(data_dir.resolve(), settings)
        server.own()
        stack.callback(server.release, discard)
        server.start()
        yield server
