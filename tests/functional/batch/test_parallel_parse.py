"""A finished stream's chunk files parsed in worker processes, the weights joined as a table
in DuckDB: the same table and the same detections as parsing and weighing record by record
(``frames.transactions_table``, which the other engine tests hold equal to the inline
detector), on both layouts, with and without workers."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tests.batchdata import CHUNK_ROWS, DENSE, Stream, make_stream
from txnpipe.batch import duckdb_engine, parallel_parse
from txnpipe.batch.frames import transactions_table
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.weights import parse_weights


def _files(stream: Stream, folder: Path) -> list[tuple[int, Path]]:
    folder.mkdir()
    files = []
    for k, data in stream.indexed():
        path = folder / f"chunk_{k:06d}.csv"
        path.write_bytes(data)
        files.append((k, path))
    return files


def _weighed(keyed: pa.Table, weights: pa.Table) -> list[tuple]:
    """The records with their weights, joined as the engine joins them, in stream order."""
    import duckdb

    with duckdb.connect() as con:
        con.register("keyed", keyed)
        con.register("weights", weights)
        con.execute(duckdb_engine._sql("weighed"))
        return con.sql("SELECT * FROM tx ORDER BY record").fetchall()


@pytest.mark.parametrize("layout", ["banksim", "seed"])
def test_worker_parsed_files_weigh_and_detect_as_one_record_at_a_time(
    tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = make_stream(tmp_path, layout=layout, seed=5)
    files = _files(stream, tmp_path / "chunks")
    expected = transactions_table(stream.indexed(), parse_weights(stream.importance), CHUNK_ROWS)
    assert expected.column("weight").null_count > 0  # some keys are absent: NULL weights

    in_process = parallel_parse.keyed_tables(files, stream.importance, CHUNK_ROWS, workers=1)
    monkeypatch.setattr(parallel_parse, "PARALLEL_CHUNKS", 1)
    in_workers = parallel_parse.keyed_tables(files, stream.importance, CHUNK_ROWS, workers=2)
    assert in_workers[0].equals(in_process[0]) and in_workers[1].equals(in_process[1])

    keyed, weights = in_workers
    assert _weighed(keyed, weights) == [tuple(r.values()) for r in expected.to_pylist()]
    found = duckdb_engine.detections(keyed, DENSE, weights=weights)
    assert found == duckdb_engine.detections(expected, DENSE)
    assert {d.pattern for d in found} == {1, 2, 3}


def test_a_worker_that_fails_names_the_chunk(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A chunk longer than chunk_rows fails in its worker with the detector's own error."""
    stream = make_stream(tmp_path, seed=5)
    files = _files(stream, tmp_path / "chunks")
    monkeypatch.setattr(parallel_parse, "PARALLEL_CHUNKS", 1)
    with pytest.raises(TxnpipeError, match=r"chunk \d+ holds more than chunk_rows=100 records"):
        parallel_parse.keyed_tables(files, stream.importance, 100, workers=2)
