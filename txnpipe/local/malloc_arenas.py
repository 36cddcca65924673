"""glibc's malloc held to two arenas in the local run's process (as ``MALLOC_ARENA_MAX=2``).

glibc gives a thread that finds the arenas busy an arena of its own, up to eight per core,
and memory freed in one arena serves only that arena's later requests. A local run has
many threads: the chunker, the receiver, the detector and its reader and stager, and the
in-process S3 server's thread per request. So memory freed by one thread sat unused while
another grew its own arena. Measured with ``txnpipe run --fast`` (one run each at 10x,
four alternating runs each at 1x):

- 10x, the ``txnpipe`` process's peak: 433, 446, 472 MB in the second to last quarter of
  the run with the default; 349, 356, 365 MB with two arenas;
- 1x: the process's peak 321 against 230 MB, and wall time no worse (0.94 of it).

It must be set before the process starts threads; an arena count set in the environment
is left as it is. Elsewhere than glibc this does nothing.
"""
from __future__ import annotations

import ctypes
import os

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def cap_arenas(arenas: int = ARENAS) -> bool:
    """Whether the cap is now set (False without glibc, or when the environment sets one)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False
