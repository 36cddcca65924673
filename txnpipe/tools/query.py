"""``txnpipe query --from RUN_DIR "SQL"``: the run folder's detections and rejects as the
tables the stack's Athena workgroup queries (``txnpipe.core.tables``), through DuckDB, so a
query tried locally runs unchanged on a deployment."""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TextIO

from txnpipe.core.errors import TxnpipeError
from txnpipe.core.tables import PARTITION, TABLES, Table


def _view(table: Table, run_dir: Path) -> str:
    """The table over every ``<prefix><source>/*.csv`` file of the run folder (none: empty)."""
    files = sorted(str(p) for p in (run_dir / table.prefix).glob("*/*.csv"))
    columns = ", ".join(f'"{c}"' for c in (*table.columns, PARTITION))
    if not files:
        nulls = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in (*table.columns, PARTITION))
        return f"CREATE VIEW {table.name} AS SELECT {nulls} WHERE false"
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    types = ", ".join(f"'{c}': 'VARCHAR'" for c in table.columns)
    return (f"CREATE VIEW {table.name} AS SELECT {columns} FROM (SELECT *, "
            f"regexp_extract(filename, '([^/]+)/[^/]+$', 1) AS {PARTITION} "
            f"FROM read_csv([{listed}], header = true, columns = {{{types}}}, quote = '\"', "
            f"escape = '\"', filename = true))")


def query(run_dir: Path, sql: str, out: TextIO | None = None) -> int:
    """Print the result (to ``out``, else stdout) as CSV with a header line; returns the
    number of rows."""
    import duckdb

    if not (run_dir / "run.json").is_file():
        raise TxnpipeError(f"{str(run_dir)!r} is no run folder (no run.json): give the folder "
                           "a `txnpipe run --out` wrote")  # fmt: skip
    with duckdb.connect() as con:
        for table in TABLES:
            con.execute(_view(table, run_dir))
        try:
            result = con.execute(sql)
        except duckdb.Error as exc:
            raise TxnpipeError(f"query failed: {str(exc).splitlines()[0]}") from None
        if result.description is None:
            return 0
        writer = csv.writer(out or sys.stdout, lineterminator="\n")
        writer.writerow([d[0] for d in result.description])
        rows = 0
        while batch := result.fetchmany(10_000):
            writer.writerows(batch)
            rows += len(batch)
    return rows
