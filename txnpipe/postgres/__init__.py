"""PostgreSQL behind the core's seams: a module per concern, statements in ``sql/``,
numbered migrations in ``migrations/``.

Every chunk is applied in one transaction of a handful of set-based statements over that
chunk's rows only: the aggregates are updated incrementally and the rules evaluated for
the pairs and merchants the chunk touched, so the cost of a chunk does not grow with the
history. Every value reaches the server as a bound parameter.
"""
from txnpipe.postgres.chunker_state import PgChunkerState
from txnpipe.postgres.connection import connect, reset_source, source_id
from txnpipe.postgres.detector_state import PgDetectorState
from txnpipe.postgres.migrations import CHUNKER_ROLE, DETECTOR_ROLE, LATEST, migrate
from txnpipe.postgres.streams import PgStreamRegistry, purge, restart

__all__ = ["CHUNKER_ROLE", "DETECTOR_ROLE", "LATEST", "PgChunkerState", "PgDetectorState", "PgStreamRegistry",
           "connect", "migrate", "purge", "reset_source", "restart", "source_id"]  # fmt: skip
