"""The deployed functions' database roles (issue 14, least privilege): each mechanism runs as
its own role, which can do its work and nothing else."""
from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit
from txnpipe import postgres


def _as(url: str, role: str) -> str:
    return psycopg.conninfo.make_conninfo(url, user=role)


def test_each_function_role_does_its_work_and_nothing_else(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    with postgres.connect(database_url) as admin:
        postgres.migrate(admin, {postgres.CHUNKER_ROLE: "not-used-under-trust",
                                postgres.DETECTOR_ROLE: "not-used-either"})  # fmt: skip
        postgres.migrate(admin)  # idempotent: a second deploy changes nothing
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)

    chunker_kit = Kit(**{**kit.__dict__, "database_url": _as(database_url, postgres.CHUNKER_ROLE)})
    chunker_kit.register()  # the put's event: the chunker registers the stream
    chunks = chunker_kit.write_all_chunks()
    with postgres.connect(_as(database_url, postgres.DETECTOR_ROLE)) as conn:
        kit.deliver(conn, kit.chunk_keys(chunks))
        assert kit.detection_files() == ds.expected()
        # the detector's purge event: it may remove an ended stream's state and mark it
        assert postgres.purge(conn, kit.source, kit.settings.detection_batch_rows).removed

    forbidden = {
        postgres.CHUNKER_ROLE: ["SELECT count(*) FROM txnpipe.history",
                               "DELETE FROM txnpipe.detections", "CREATE TABLE txnpipe.x (a int)",
                               "DELETE FROM txnpipe.streams",
                               "SELECT count(*) FROM txnpipe.stream_refusals"],
        postgres.DETECTOR_ROLE: ["UPDATE txnpipe.chunker_state SET done = false",
                                "SELECT count(*) FROM txnpipe.chunker_state",
                                "DROP TABLE txnpipe.pairs",
                                "UPDATE txnpipe.streams SET input_key = 'x'",
                                "INSERT INTO txnpipe.streams (source_id) VALUES (1)"],
    }  # fmt: skip
    for role, statements in forbidden.items():
        with psycopg.connect(_as(database_url, role), autocommit=True) as conn:
            for statement in statements:
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(statement)


def test_only_function_roles_get_passwords(database_url: str) -> None:
    with postgres.connect(database_url) as admin, pytest.raises(ValueError, match="not a txnpipe"):
        postgres.migrate(admin, {"postgres": "x"})


def test_a_function_role_on_an_older_schema_asks_for_the_migration(database_url: str) -> None:
    from txnpipe.core.errors import TxnpipeError

    with postgres.connect(database_url) as admin:
        postgres.migrate(admin)
        admin.execute("DELETE FROM txnpipe.migrations WHERE number > 1")
    with pytest.raises(TxnpipeError, match="run the migration"):
        postgres.connect(_as(database_url, postgres.DETECTOR_ROLE))
    with psycopg.connect(database_url) as admin:  # a later schema is fine (a rolled-back deploy)
        admin.execute("INSERT INTO txnpipe.migrations (number, name) SELECT n, 'later'"
                      " FROM generate_series(2, %s) AS n", (postgres.LATEST + 1,))  # fmt: skip
    postgres.connect(_as(database_url, postgres.DETECTOR_ROLE)).close()
