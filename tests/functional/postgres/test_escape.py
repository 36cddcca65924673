"""COPY's text format: every value reads back as written."""
from __future__ import annotations

import psycopg
import pytest

from txnpipe.postgres.escape import copy_text


@pytest.mark.parametrize("odd", ["tab\there", "line\nbreak", "carriage\rreturn", "back\\slash", "\\N"])
def test_copy_text_reads_back_every_value_as_written(database_url: str, odd: str) -> None:
    """Values that COPY's text format must escape come back as they went in, whichever row
    holds them, and so do numbers (their repr)."""
    rows = [(1, "plain", 0.1), (2, odd, 1e-300), (3, f"{odd}{odd}", -2.5), (4, "last", 7.0)]
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TEMP TABLE t (i bigint, s text, v float8)")
        with conn.cursor().copy("COPY t (i, s, v) FROM STDIN") as copy:
            copy.write(copy_text(rows))
        assert conn.execute("SELECT i, s, v FROM t ORDER BY i").fetchall() == rows


