"""Errors a user can act on: the CLI prints them on one line and exits 2."""
from __future__ import annotations


class TxnpipeError(Exception):
    """Bad input or configuration, named precisely enough to fix without a traceback."""
