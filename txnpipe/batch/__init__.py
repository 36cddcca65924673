"""Batch engines for the heavy aggregation (SPEC 4.4) and for backfill.

The streaming detector evaluates the patterns after every chunk; a batch engine recomputes the
same evaluation points over a range of chunks at once, from the chunk files themselves. Parity
comes from sharing the core: records are parsed, cleaned and weighted by the same functions
(``frames``), and emit-once and ordering live in one engine-independent place (``emit``).

Engines are imported from their own modules (``duckdb_engine``, ``spark_engine``) so that
importing this package pulls in neither DuckDB nor PySpark.
"""
from __future__ import annotations

from collections.abc import Mapping

from txnpipe.core.settings import Settings

# A batch engine's working memory by default: DuckDB's limit (it spills to disk beyond
# it), Spark's driver heap (in local mode every executor's too). ``txnpipe backfill
# --memory-limit`` sets it.
MEMORY_LIMITS = {"duckdb": "1GB", "spark": "2GB"}

SettingsLike = Settings | Mapping[str, float | int]


def as_settings(settings: SettingsLike) -> Settings:
    """Engines accept a ``Settings`` or a plain dict (what a Glue job's arguments become)."""
    return settings if isinstance(settings, Settings) else Settings(**dict(settings))
