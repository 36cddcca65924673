"""The output files as tables: what ``txnpipe query`` (DuckDB, over a run folder) and the
stack's Glue Data Catalog (Athena, over the bucket) both call ``detections`` and ``rejects``.

Each is CSV with a header line, one folder per stream (``detections/<source>/...``), read
with the folder's name as the partition column ``source``; every column is text, as the
files hold it (SPEC 4.3), so that the same SQL runs on both engines.
"""
from __future__ import annotations

from dataclasses import dataclass

from txnpipe.core.chunkparse import REJECT_COLUMNS
from txnpipe.core.detections import HEADER as DETECTION_COLUMNS

PARTITION = "source"


@dataclass(frozen=True)
class Table:
    name: str
    prefix: str  # in the bucket, and in a run folder
    columns: tuple[str, ...]


DETECTIONS = Table("detections", "detections/", tuple(DETECTION_COLUMNS))
REJECTS = Table("rejects", "rejects/", REJECT_COLUMNS)
TABLES = (DETECTIONS, REJECTS)
