"""Chunk files to columnar transactions, through the core parsers, for the batch engines.

Every engine must see exactly the records the detector sees: the same rejects, the same
cleaning, the same weight of each transaction. So nothing here re-implements parsing; it
calls ``parse_chunk`` and ``Weights.key_for`` and only changes the shape of the result
(row tuples for Spark executors, an Arrow table for DuckDB).
"""
from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from txnpipe.core.chunkparse import parse_chunk
from txnpipe.core.weights import Weights

TransactionRow = tuple[int, int, str, str, float, str, float | None]
"""(chunk, record, customer, merchant, value, gender, weight): one accepted record."""

COLUMNS: tuple[str, ...] = ("chunk", "record", "customer", "merchant", "value", "gender", "weight")

SCHEMA = pa.schema(
    [
        pa.field("chunk", pa.int32(), nullable=False),
        pa.field("record", pa.int64(), nullable=False),
        pa.field("customer", pa.string(), nullable=False),
        pa.field("merchant", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("gender", pa.string(), nullable=False),
        pa.field("weight", pa.float64(), nullable=True),
    ]
)


def chunk_transactions(
    chunk: int, data: bytes, weights: Weights, chunk_rows: int
) -> list[TransactionRow]:
    """The accepted records of one chunk file, each with its weight (None when its key is absent).

    Pure and picklable-friendly: Spark executors call it on the bytes of one chunk file.
    """
    parsed = parse_chunk(data, chunk, chunk_rows)
    lookup = weights.by_key.get
    key_for = weights.key_for
    return [
        (chunk, t.record, t.customer, t.merchant, t.value, t.gender,
         lookup(key_for(t.customer, t.merchant, t.kind)))
        for t in parsed.transactions
    ]  # fmt: skip


KeyedRow = tuple[int, int, str, str, float, str, str, str]
"""(chunk, record, customer, merchant, value, gender, kind, weight merchant): one accepted
record with its weight's key instead of its weight (the weight merchant is ``""`` when the
importance file has no merchant column), for an engine that joins the weights as a table."""


def keyed_transactions(
    chunk: int, data: bytes, keyed_by_merchant: bool, chunk_rows: int
) -> list[KeyedRow]:
    """The accepted records of one chunk file, each with its weight's key (``Weights.key_for``)."""
    return [
        (chunk, t.record, t.customer, t.merchant, t.value, t.gender, t.kind,
         t.merchant if keyed_by_merchant else "")
        for t in parse_chunk(data, chunk, chunk_rows).transactions
    ]  # fmt: skip


KEYED_SCHEMA = pa.schema(
    [*(SCHEMA.field(name) for name in COLUMNS[:-1]),
     pa.field("kind", pa.string(), nullable=False),
     pa.field("weight_merchant", pa.string(), nullable=False)]
)  # fmt: skip


def keyed_batch(chunks: Iterable[tuple[int, bytes]], keyed_by_merchant: bool,
                chunk_rows: int) -> pa.RecordBatch:  # fmt: skip
    """The accepted records of some chunk files with their weights' keys (``KEYED_SCHEMA``):
    what a worker parses without holding the weights."""
    rows = [row for chunk, data in chunks
            for row in keyed_transactions(chunk, data, keyed_by_merchant, chunk_rows)]  # fmt: skip
    return _batch(rows, KEYED_SCHEMA)


def weights_table(weights: Weights) -> pa.Table:
    """The weights as a table to join on ``KEYED_SCHEMA``'s key (customer, weight merchant,
    kind): ``weights.by_key``'s floats, so a joined record gets exactly the weight
    ``chunk_transactions`` looks up for it one record at a time."""
    customers, merchants, kinds = zip(*weights.by_key) if weights.by_key else ((), (), ())
    return pa.table({
        "customer": pa.array(customers, pa.string()),
        "weight_merchant": pa.array(merchants, pa.string()),
        "kind": pa.array(kinds, pa.string()),
        "weight": pa.array(list(weights.by_key.values()), pa.float64()),
    })  # fmt: skip


def transactions_table(
    chunks: Iterable[tuple[int, bytes]], weights: Weights, chunk_rows: int,
    batch_chunks: int = 50,
) -> pa.Table:
    """All accepted records of the given chunk files as one Arrow table (``SCHEMA``).

    Built a batch of ``batch_chunks`` chunks at a time, so the Python objects alive at once
    are one batch's, not the stream's (``chunks`` may be a generator reading files lazily).
    Chunks may come in any order; the engines order by ``chunk`` and ``record`` themselves.
    """
    batches: list[pa.RecordBatch] = []
    rows: list[TransactionRow] = []
    for i, (chunk, data) in enumerate(chunks, 1):
        rows += chunk_transactions(chunk, data, weights, chunk_rows)
        if i % batch_chunks == 0:
            batches.append(_batch(rows))
            rows = []
    if rows or not batches:
        batches.append(_batch(rows))
    return pa.Table.from_batches(batches, schema=SCHEMA)


def _batch(rows: list[TransactionRow] | list[KeyedRow],
           schema: pa.Schema = SCHEMA) -> pa.RecordBatch:  # fmt: skip
    columns = zip(*rows) if rows else ([] for _ in schema)
    return pa.RecordBatch.from_arrays(
        [pa.array(values, type=field.type) for values, field in zip(columns, schema)],
        schema=schema,
    )
