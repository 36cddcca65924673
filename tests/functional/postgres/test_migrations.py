"""Numbered migrations (``txnpipe/postgres/migrations``): a new database gets them all in
order; the databases of earlier layouts (0.1, 0.2), made before migrations were numbered,
are recognised and upgraded in place, then run a stream like a new one."""
from __future__ import annotations

import psycopg
import pytest

from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit
from txnpipe import postgres
from txnpipe.postgres.migrations import migrations


def _applied(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [n for (n,) in conn.execute("SELECT number FROM txnpipe.migrations ORDER BY number")]


def test_a_new_database_gets_every_migration_in_order(database_url: str) -> None:
    postgres.connect(database_url).close()
    assert _applied(database_url) == list(range(1, postgres.LATEST + 1))
    assert [m.name for m in migrations()][:2] == ["initial", "mean_weight_column"]
    postgres.connect(database_url).close()  # current: nothing runs again
    assert _applied(database_url) == list(range(1, postgres.LATEST + 1))


@pytest.mark.parametrize("layout", [1, 2])
def test_a_database_of_an_earlier_layout_is_upgraded_in_place(
    layout: int, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:  # as txnpipe 0.1 / 0.2 left it
        for m in migrations()[:layout]:
            conn.execute(m.ddl)
        conn.execute(
            "INSERT INTO txnpipe.pairs (source_id, merchant, customer, n, value_sum, weight_sum,"
            " weighted) VALUES (9, 'M', 'C', 2, 3.0, 1.5, 2), (9, 'M', 'D', 1, 1.0, 0, 0)"
        )
        if layout == 2:  # 0.2 filled w as it applied chunks
            conn.execute("UPDATE txnpipe.pairs SET w = weight_sum / weighted WHERE weighted > 0")
    with postgres.connect(database_url) as conn:  # connecting migrates
        means = conn.execute("SELECT customer, w, weighted_txns FROM txnpipe.pairs"
                             " WHERE source_id = 9 ORDER BY customer").fetchall()  # fmt: skip
        indexes = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'txnpipe' AND tablename = 'pairs'"
        ).fetchall()
    assert means == [("C", 0.75, 2), ("D", None, 0)]
    assert {name for (name,) in indexes} == {"pairs_pkey", "pairs_by_top_key",
                                             "pairs_by_mean_weight"}  # fmt: skip
    assert _applied(database_url) == list(range(layout + 1, postgres.LATEST + 1))

    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    keys = kit.chunk_keys(kit.write_all_chunks())
    with postgres.connect(database_url) as conn:
        kit.deliver(conn, keys)
    assert kit.detection_files() == ds.expected()
