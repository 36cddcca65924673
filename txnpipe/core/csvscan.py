"""Record boundaries and fields of RFC 4180 CSV, on bytes.

The chunker must cut a file into records without parsing values, starting from any
record boundary, so boundaries are found on raw bytes. A ``"`` opens a quoted field only
at the start of a field (as Python's csv, Arrow and spreadsheets read it): a stray quote
inside an unquoted field is data and cannot swallow the lines after it. Inside quotes,
commas and line breaks are data and ``""`` is one quote. A record ends at LF; a CR before
it is white space that cleaning removes, so LF and CRLF files read the same.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"

_QUOTED = rb'"[^"]*(?:""[^"]*)*(?:"|\Z)[^,\n]*'
_PLAIN = rb"[^,\n]*"
_FIELD = rb"(?:" + _QUOTED + rb"|" + _PLAIN + rb")"
_RECORD = re.compile(_FIELD + rb"(?:," + _FIELD + rb")*(?:\n|\Z)")
_FIELD_RE = re.compile(rb"(" + _QUOTED + rb"|" + _PLAIN + rb")(?:,|\n|\Z)")
_QUOTED_VALUE = re.compile(rb'"((?:[^"]|"")*)(?:"|\Z)(.*)', re.DOTALL)


@dataclass(frozen=True)
class Scan:
    """Complete records found in a buffer and where the unread rest begins."""

    records: list[bytes]
    consumed: int
    exhausted: bool


def is_empty_line(raw: bytes) -> bool:
    return raw in (b"\n", b"\r\n", b"\r", b"")


def scan_records(buf: bytes, eof: bool, limit: int | None = None) -> Scan:
    """Split ``buf`` into raw records (terminator included), skipping empty lines.

    A record that reaches the end of ``buf`` is only complete when ``eof`` is true;
    otherwise it is left unconsumed so the caller can fetch more bytes and rescan.
    """
    if b'"' not in buf:
        return _scan_lines(buf, eof, limit)
    records: list[bytes] = []
    pos = 0
    end = len(buf)
    match = _RECORD.match
    while pos < end and (limit is None or len(records) < limit):
        m = match(buf, pos)
        assert m is not None  # every alternative can match the empty string
        stop = m.end()
        if stop == end and not buf.endswith(b"\n", pos, stop) and not eof:
            break
        raw = buf[pos:stop]
        pos = stop
        if not is_empty_line(raw):
            records.append(raw)
    return Scan(records, pos, pos >= end and eof)


def _scan_lines(buf: bytes, eof: bool, limit: int | None) -> Scan:
    """``scan_records`` for a buffer without quotes, where every line is one record."""
    records: list[bytes] = []
    pos, end = 0, len(buf)
    while pos < end and (limit is None or len(records) < limit):
        stop = buf.find(b"\n", pos)
        if stop < 0:
            if not eof:
                break
            stop = end
        else:
            stop += 1
        raw = buf[pos:stop]
        pos = stop
        if not is_empty_line(raw):
            records.append(raw)
    return Scan(records, pos, pos >= end and eof)


def iter_records(data: bytes) -> Iterator[bytes]:
    """Every record of a whole file, one at a time (a large file is never held as a list).

    Without a ``"`` anywhere, records are exactly lines, and splitting on LF is ten times
    cheaper than matching the record pattern line by line.
    """
    if b'"' not in data:
        yield from _lines(data)
        return
    pos, end, match = 0, len(data), _RECORD.match
    while pos < end:
        m = match(data, pos)
        assert m is not None
        raw = data[pos : m.end()]
        pos = m.end()
        if not is_empty_line(raw):
            yield raw


def _lines(data: bytes) -> Iterator[bytes]:
    start, end = 0, len(data)
    while start < end:
        stop = data.find(b"\n", start)
        stop = end if stop < 0 else stop + 1
        raw = data[start:stop]
        start = stop
        if not is_empty_line(raw):
            yield raw


def split_fields(raw: bytes) -> list[bytes]:
    """Fields of one raw record, quotes undone; values are still bytes (not decoded)."""
    if b'"' not in raw:
        body = raw[:-1] if raw.endswith(b"\n") else raw
        return body.split(b",")
    fields: list[bytes] = []
    pos = 0
    end = len(raw)
    while True:
        m = _FIELD_RE.match(raw, pos)
        assert m is not None
        value = m.group(1)
        if value.startswith(b'"'):
            q = _QUOTED_VALUE.match(value)
            assert q is not None
            value = q.group(1).replace(b'""', b'"') + q.group(2)
        fields.append(value)
        stop = m.end()
        if stop >= end or raw[stop - 1 : stop] == b"\n":
            if raw[stop - 1 : stop] == b"," and stop >= end:
                fields.append(b"")
            return fields
        pos = stop
