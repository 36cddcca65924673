"""A chunk file back into transactions and rejects, with their stream-wide record numbers."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from txnpipe.core.csvscan import iter_records
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.layouts import (
    Reject,
    Transaction,
    parse_line,
    parse_lines,
    parse_transaction,
    transactions_layout,
)


@dataclass(frozen=True)
class ParsedChunk:
    transactions: list[Transaction]
    rejects: list[Reject]

    @property
    def records(self) -> int:
        return len(self.transactions) + len(self.rejects)


def parse_chunk(data: bytes, chunk: int, chunk_rows: int) -> ParsedChunk:
    lines = _quote_free_lines(data)
    if lines and len(lines) - 1 <= chunk_rows:  # a chunk of accepted records, by column
        layout = transactions_layout(lines[0].encode("utf-8"))
        transactions = parse_lines(chunk * chunk_rows, lines[1:], layout)
        if transactions is not None:
            return ParsedChunk(transactions, [])
    return _parse_records(iter(lines) if lines is not None else iter_records(data), chunk,
                          chunk_rows)  # fmt: skip


def _parse_records(records: Iterator[bytes | str], chunk: int, chunk_rows: int) -> ParsedChunk:
    """One record at a time, each reject with its reason."""
    header = next(records, None)
    if header is None:
        raise TxnpipeError(f"chunk {chunk} is empty: no header line")
    layout = transactions_layout(header.encode("utf-8") if isinstance(header, str) else header)
    first = chunk * chunk_rows
    transactions: list[Transaction] = []
    rejects: list[Reject] = []
    for i, record in enumerate(records):
        if i >= chunk_rows:
            raise TxnpipeError(
                f"chunk {chunk} holds more than chunk_rows={chunk_rows} records; "
                "the chunker and the detector must share the chunk_rows setting"
            )
        if isinstance(record, str):
            parsed = parse_line(first + i, record, layout)
        else:
            parsed = parse_transaction(first + i, record, layout)
        (transactions if isinstance(parsed, Transaction) else rejects).append(parsed)
    return ParsedChunk(transactions, rejects)


def _quote_free_lines(data: bytes) -> list[str] | None:
    """The non-empty lines of a chunk that holds no ``"`` and is valid UTF-8, decoded at
    once (each such line is one record); None for any other chunk."""
    if b'"' in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return [line for line in text.split("\n") if line and line != "\r"]


REJECT_COLUMNS = ("record", "reason", "line")


def rejects_csv(rejects: Sequence[Reject]) -> bytes:
    """One row per rejected record; the raw line is kept for repair, with bytes that are not
    UTF-8 and NUL characters written as ``\\xNN`` (no output file holds a raw NUL)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REJECT_COLUMNS)
    for r in rejects:
        line = r.raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
        writer.writerow((r.record, r.reason, line.replace("\x00", "\\x00")))
    return out.getvalue().encode("utf-8")
