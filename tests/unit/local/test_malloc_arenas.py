"""The local run's cap on glibc's malloc arenas, seen in glibc's own count of them."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from txnpipe.local.malloc_arenas import ARENAS

# Eight threads malloc and free outside the GIL (ctypes releases it) at once, so that
# glibc finds arenas busy and makes more; then glibc prints one "Arena N:" block for each.
_CONTEND = """
import ctypes, sys, threading
from txnpipe.local.malloc_arenas import cap_arenas
if sys.argv[1] == "cap":
    assert cap_arenas()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def churn():
    for _ in range(20_000):
        libc.free(libc.malloc(65_536))
threads = [threading.Thread(target=churn) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc.malloc_stats()
"""


def _arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", _CONTEND, mode], env=env, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the cap is glibc's")
def test_threads_share_two_arenas_once_capped() -> None:
    assert _arenas("default") > ARENAS  # what the cap is for: glibc's default makes more
    assert 1 <= _arenas("cap") <= ARENAS


def test_an_arena_count_in_the_environment_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from txnpipe.local.malloc_arenas import cap_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert cap_arenas() is False
