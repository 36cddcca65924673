"""Real services for the tests: PostgreSQL (embedded, or TXNPIPE_TEST_DATABASE_URL) and moto S3."""
from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from txnpipe.local import services


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    with services.postgres(os.environ.get("TXNPIPE_TEST_DATABASE_URL")) as url:
        yield url


@pytest.fixture
def database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database per test on the session's server."""
    name = f"txnpipe_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield psycopg.conninfo.make_conninfo(pg_server_url, dbname=name)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with services.s3_endpoint(None) as url:
        yield url


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"txnpipe-test-{uuid.uuid4().hex[:12]}"
    services.client("s3", s3_endpoint).create_bucket(Bucket=name)
    return name


def detection_files(out: Path, source: str) -> list[list[tuple[str, str, str, str]]]:
    """The detection files under ``out`` as (patternId, ActionType, customer, merchant) rows."""
    folder = out / "detections" / source
    files = []
    for i, path in enumerate(sorted(folder.glob("detections_*.csv"))):
        assert path.name == f"detections_{i:06d}.csv"
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
        assert rows[0] == ["YStartTime", "detectionTime", "patternId", "ActionType",
                           "customerName", "MerchantId"]  # fmt: skip
        files.append([(r[2], r[3], r[4], r[5]) for r in rows[1:]])
    return files
