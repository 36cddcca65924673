"""The deployed functions' database roles (issue 14, least privilege): each mechanism runs as
its own role, which can do its work and nothing else."""
from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit
from txnpipe.adapters import pgstore


def _as(url: str, role: str) -> str:
    return psycopg.conninfo.make_conninfo(url, user=role)


def test_each_function_role_does_its_work_and_nothing_else(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    with pgstore.connect(database_url) as admin:
        pgstore.migrate(admin, {pgstore.CHUNKER_ROLE: "not-used-under-trust",
                                pgstore.DETECTOR_ROLE: "not-used-either"})  # fmt: skip
        pgstore.migrate(admin)  # idempotent: a second deploy changes nothing
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)

    chunker_kit = Kit(**{**kit.__dict__, "database_url": _as(database_url, pgstore.CHUNKER_ROLE)})
    chunks = chunker_kit.write_all_chunks()
    with pgstore.connect(_as(database_url, pgstore.DETECTOR_ROLE)) as conn:
        kit.deliver(conn, kit.chunk_keys(chunks))
    assert kit.detection_files() == ds.expected()

    forbidden = {
        pgstore.CHUNKER_ROLE: ["SELECT count(*) FROM txnpipe.history",
                               "DELETE FROM txnpipe.detections", "CREATE TABLE txnpipe.x (a int)"],
        pgstore.DETECTOR_ROLE: ["UPDATE txnpipe.chunker_state SET done = false",
                                "SELECT count(*) FROM txnpipe.chunker_state",
                                "DROP TABLE txnpipe.pairs"],
    }  # fmt: skip
    for role, statements in forbidden.items():
        with psycopg.connect(_as(database_url, role), autocommit=True) as conn:
            for statement in statements:
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(statement)


def test_only_function_roles_get_passwords(database_url: str) -> None:
    with pgstore.connect(database_url) as admin, pytest.raises(ValueError, match="not a txnpipe"):
        pgstore.migrate(admin, {"postgres": "x"})


def test_a_function_role_on_an_older_schema_asks_for_the_migration(database_url: str) -> None:
    from txnpipe.errors import TxnpipeError

    with pgstore.connect(database_url) as admin:
        pgstore.migrate(admin)
        admin.execute("UPDATE txnpipe.schema_version SET version = 1")
    with pytest.raises(TxnpipeError, match="run the migration"):
        pgstore.connect(_as(database_url, pgstore.DETECTOR_ROLE))
    with pgstore.connect(database_url) as admin:  # a later schema is fine (a rolled-back deploy)
        admin.execute("UPDATE txnpipe.schema_version SET version = %s",
                      (pgstore.SCHEMA_VERSION + 1,))  # fmt: skip
    pgstore.connect(_as(database_url, pgstore.DETECTOR_ROLE)).close()
