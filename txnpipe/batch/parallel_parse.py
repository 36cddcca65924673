"""A finished stream's chunk files into the DuckDB engine's input, parsed in worker processes.

Parsing is the detector's own pure-Python code (SPEC 2.2's cleaning), and it was half of a
10x DuckDB backfill (51 of 104 s), on one core while the other waited. Chunk files are
independent, so workers parse batches of them, named by path (no chunk bytes cross between
processes, only each batch's Arrow records come back), while this process parses the
importance file. The weights are then joined as a table, in DuckDB (``frames.weights_table``),
rather than looked up record by record, so no worker needs them and the Python dict of
them (about 0.5 GB at 10x) is gone before DuckDB starts.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pyarrow as pa

from txnpipe.batch.frames import KEYED_SCHEMA, keyed_batch, weights_table
from txnpipe.core.weights import keyed_by_merchant, parse_weights, weight_rows

BATCH_CHUNKS = 50  # chunk files per task
PARALLEL_CHUNKS = 200  # below this, starting the workers costs more than they save


def _parse_files(files: list[tuple[int, str]], by_merchant: bool,
                 chunk_rows: int) -> pa.RecordBatch:  # fmt: skip
    return keyed_batch(((k, Path(path).read_bytes()) for k, path in files), by_merchant,
                       chunk_rows)  # fmt: skip


def keyed_tables(chunks: Sequence[tuple[int, Path]], importance: bytes, chunk_rows: int,
                 workers: int | None = None) -> tuple[pa.Table, pa.Table]:  # fmt: skip
    """Every accepted record of the chunk files with its weight's key (``frames.KEYED_SCHEMA``),
    in stream order, and the weights (``frames.weights_table``). ``workers`` defaults to the
    cores this process may use; with fewer than two, or few chunks, all is parsed here."""
    by_merchant = keyed_by_merchant(weight_rows(importance).layout)
    tasks = [[(k, str(path)) for k, path in chunks[i : i + BATCH_CHUNKS]]
             for i in range(0, len(chunks), BATCH_CHUNKS)]  # fmt: skip
    workers = len(os.sched_getaffinity(0)) if workers is None else workers
    if workers < 2 or len(chunks) < PARALLEL_CHUNKS:
        batches = [_parse_files(task, by_merchant, chunk_rows) for task in tasks]
        weights = parse_weights(importance)
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            parsing = [pool.submit(_parse_files, task, by_merchant, chunk_rows) for task in tasks]
            weights = parse_weights(importance)  # meanwhile, here
            batches = [future.result() for future in parsing]
    return pa.Table.from_batches(batches, schema=KEYED_SCHEMA), weights_table(weights)
