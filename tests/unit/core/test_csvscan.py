from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from txnpipe.core.csvscan import _RECORD, iter_records, scan_records, split_fields


def test_quoted_comma_newline_and_doubled_quote_stay_in_one_record() -> None:
    data = b'a,b,c\n1,"x,\n""y""",3\n4,5,6\n'
    records = list(iter_records(data))
    assert records == [b"a,b,c\n", b'1,"x,\n""y""",3\n', b"4,5,6\n"]
    assert split_fields(records[1]) == [b"1", b'x,\n"y"', b"3"]


def test_crlf_and_empty_lines() -> None:
    data = b"a,b\r\n\r\n1,2\r\n\n3,4\r\n"
    records = list(iter_records(data))
    assert records == [b"a,b\r\n", b"1,2\r\n", b"3,4\r\n"]
    assert split_fields(records[1]) == [b"1", b"2\r"]  # the CR is white space for cleaning


def test_last_line_without_line_end_is_a_record() -> None:
    assert list(iter_records(b"a,b\n1,2")) == [b"a,b\n", b"1,2"]


def test_record_cut_by_the_buffer_is_left_for_the_next_read() -> None:
    scan = scan_records(b'a,b\n1,"open\nstill', eof=False)
    assert scan.records == [b"a,b\n"]
    assert scan.consumed == 4
    scan = scan_records(b"a,b\n1,2", eof=False)
    assert scan.records == [b"a,b\n"] and scan.consumed == 4


def test_limit_stops_after_n_records() -> None:
    scan = scan_records(b"1\n2\n3\n", eof=True, limit=2)
    assert scan.records == [b"1\n", b"2\n"] and scan.consumed == 4


def test_stray_quote_inside_unquoted_field_is_data() -> None:
    records = list(iter_records(b'ab"c,d\nx,y\n'))
    assert records == [b'ab"c,d\n', b"x,y\n"]
    assert split_fields(records[0]) == [b'ab"c', b"d"]


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        (b"a,b,\n", [b"a", b"b", b""]),
        (b"a,b,", [b"a", b"b", b""]),
        (b'"q"x,b\n', [b"qx", b"b"]),
        (b'"unterminated,\nrest', [b"unterminated,\nrest"]),
        (b",\n", [b"", b""]),
    ],
)
def test_split_fields_edges(raw: bytes, fields: list[bytes]) -> None:
    assert split_fields(raw) == fields


def test_large_field_is_scanned_without_trouble() -> None:
    big = b"x" * 100_000
    records = list(iter_records(b'a,b\n"' + big + b'",1\n'))
    assert split_fields(records[1]) == [big, b"1"]


def _scan_by_pattern(buf: bytes, eof: bool, limit: int | None) -> tuple[list[bytes], int, bool]:
    """``scan_records`` as the record pattern alone finds it, for any buffer."""
    records, pos = [], 0
    while pos < len(buf) and (limit is None or len(records) < limit):
        stop = _RECORD.match(buf, pos).end()  # type: ignore[union-attr]
        if stop == len(buf) and not buf.endswith(b"\n", pos, stop) and not eof:
            break
        if buf[pos:stop] not in (b"\n", b"\r\n", b"\r", b""):
            records.append(buf[pos:stop])
        pos = stop
    return records, pos, pos >= len(buf) and eof


@settings(max_examples=300, derandomize=True)
@given(
    st.lists(st.sampled_from([b"a", b"1", b",", b"\n", b"\r", b" ", b"'", b"\xc3\xa9"]),
             max_size=40),
    st.booleans(),
    st.sampled_from([None, 1, 2, 5]),
)  # fmt: skip
def test_quote_free_fast_paths_find_what_the_pattern_finds(
    parts: list[bytes], eof: bool, limit: int | None
) -> None:
    buf = b"".join(parts)
    scan = scan_records(buf, eof=eof, limit=limit)
    assert (scan.records, scan.consumed, scan.exhausted) == _scan_by_pattern(buf, eof, limit)
    assert list(iter_records(buf)) == _scan_by_pattern(buf, True, None)[0]
