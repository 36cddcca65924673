"""The SQL of the PostgreSQL adapter, kept as SQL: ``sql/<name>.sql``, loaded by name.

Every value reaches the server as a bound parameter (``%(name)s``); the one statement built
at run time, the chunk's aggregate, is rendered from the rule catalogue by ``aggregate.py``.
"""
from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def statement(name: str) -> str:
    return resources.files("txnpipe.postgres").joinpath("sql", f"{name}.sql").read_text()
