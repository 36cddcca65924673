"""Errors a user can act on: the CLI prints them on one line (never a traceback)."""
from __future__ import annotations


class TxnpipeError(Exception):
    """Bad input or configuration, named precisely enough to fix without a traceback.

    Raised before any work is done (SPEC 5): the CLI exits 2."""

    exit_code = 2


class RunFailed(TxnpipeError):
    """A run that had started could not finish (its database did not come back, say): the
    CLI exits 1, and a later run with the same arguments produces the same outputs."""

    exit_code = 1


class EngineFailed(TxnpipeError):
    """A batch engine that could not finish its computation (out of memory, say), as
    opposed to one that found a difference: the CLI exits 3 with the engine's reason."""

    exit_code = 3


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (libpq's span several), or its type's name."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__
