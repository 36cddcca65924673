from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from txnpipe.core.chunkparse import parse_chunk, rejects_csv
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.layouts import (
    Reject,
    Transaction,
    clean,
    clean_column,
    parse_lines,
    parse_number,
    parse_numbers,
    parse_transaction,
    transactions_layout,
)
from txnpipe.core.weights import parse_weights

BANKSIM = b"step,customer,age,gender,zipcodeOri,merchant,zipMerchant,category,amount,fraud\n"
SEED = b"CustomerId,MerchantId,transaction_value,gender,transaction_type\n"


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [(" 'C1' ", "C1"), ("'  C1 '", "C1"), ("''C1''", "'C1'"), ("'", "'"), ("  ", ""), ("'C1", "'C1")],
)
def test_clean(raw: str, cleaned: str) -> None:
    assert clean(raw) == cleaned


@pytest.mark.parametrize(
    ("text", "value"),
    [("4.55", 4.55), ("-1", -1.0), (".5", 0.5), ("1e3", 1000.0), ("inf", None), ("nan", None),
     ("1_000", None), ("0x10", None), ("", None), ("1e999", None), ("abc", None),
     ("\u0661\u0662", None), ("5.", 5.0), ("+.5e-1", 0.05)],
)  # fmt: skip
def test_parse_number_is_strict(text: str, value: float | None) -> None:
    assert parse_number(text) == value


def test_header_matches_case_insensitively_after_cleaning_with_bom() -> None:
    layout = transactions_layout(b"\xef\xbb\xbf'CUSTOMERID', merchantid,Transaction_Value,GENDER,transaction_type\r\n")
    assert layout.name == "seed" and layout.customer == 0 and layout.value == 2


def test_unknown_header_names_the_missing_columns() -> None:
    with pytest.raises(TxnpipeError, match="missing.*transaction_value") as err:
        transactions_layout(b"CustomerId,MerchantId,gender,transaction_type\n")
    assert "amount" in str(err.value)


def test_banksim_record_is_cleaned() -> None:
    layout = transactions_layout(BANKSIM)
    t = parse_transaction(7, b"0,'C1','4','f','28007','M9','28007','es_food',4.55,0\n", layout)
    assert t == Transaction(7, "C1", "M9", 4.55, "F", "es_food")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"C1,M1,5\n", "expected 5 fields, found 3"),
        (b"'',M1,5,F,t\n", "empty customer"),
        (b"C1, ,5,F,t\n", "empty merchant"),
        (b"C1,M1,abc,F,t\n", "not a finite number"),
        (b"C1,M1,inf,F,t\n", "not a finite number"),
        (b"C1,M1,-0.5,F,t\n", "negative"),
        (b"C\xff,M1,5,F,t\n", "not valid UTF-8"),
        (b"C1,M1,1e308,F,t\n", "greater than 10^15"),
        (b"C1,M1,1000000000000000.1,F,t\n", "greater than 10^15"),
        (b"C1,M1\x00,5,F,t\n", "NUL"),
        (b"C1,M1,5,F,t\x00\n", "NUL"),
        (b"C" + b"1" * 1000 + b",M1,5,F,t\n", "longer than 1000 bytes"),
        (b"C1,M" + "\u00e9".encode() * 500 + b",5,F,t\n", "longer than 1000 bytes"),
    ],
)
def test_rejects_carry_a_reason(line: bytes, reason: str) -> None:
    r = parse_transaction(3, line, transactions_layout(SEED))
    assert isinstance(r, Reject) and reason in r.reason and r.record == 3


def test_values_up_to_ten_to_the_fifteen_and_any_long_type_are_accepted() -> None:
    """SPEC 2.2 bounds a value at 10^15 and an id (customer, merchant) at 1,000 bytes; a
    transaction type is no id, and is stored and looked up at any length."""
    layout = transactions_layout(SEED)
    kind = "t" * 5000
    ids = "C" * 999, "M" * 999
    t = parse_transaction(0, f"{ids[0]},{ids[1]},1e15,F,{kind}\n".encode(), layout)
    assert isinstance(t, Transaction) and t.value == 1e15 and t.kind == kind


def test_a_header_line_that_is_not_text_is_refused() -> None:
    for header, message in (
        (SEED.replace(b"gender", b"gen\x00der"), "binary, not CSV text"),
        (SEED.replace(b"\n", b"\rC1,M1,5,F,t\r"), "bare CR"),
        (SEED.replace(b"\n", b"\r"), None),  # one line ending in CR: nothing is bare
        (SEED.replace(b"\n", b"\r\n"), None),
    ):
        if message is None:
            assert transactions_layout(header).name == "seed"
        else:
            with pytest.raises(TxnpipeError, match=message):
                transactions_layout(header)


def test_a_nul_is_a_reject_wherever_it_is_and_never_written_raw() -> None:
    lines = [b"C1,M1,1,F,t\n", b"C2,M\x001,1,F,t\n", b'"C\x003",M1,1,F,t\n', b"C4,M1,2,F,t\n"]
    parsed = parse_chunk(SEED + b"".join(lines), 0, 10)
    assert [t.customer for t in parsed.transactions] == ["C1", "C4"]
    assert [(r.record, "NUL" in r.reason) for r in parsed.rejects] == [(1, True), (2, True)]
    written = rejects_csv(parsed.rejects)
    assert b"\x00" not in written and b"M\\x001" in written


def test_gender_other_than_f_or_m_is_neither() -> None:
    layout = transactions_layout(SEED)
    for g, want in ((b"m", "M"), (b" F ", "F"), (b"E", ""), (b"", "")):
        t = parse_transaction(0, b"C1,M1,1," + g + b",t\n", layout)
        assert isinstance(t, Transaction) and t.gender == want


def test_weights_mean_of_duplicates_and_skipped_rows() -> None:
    data = (
        b"Source,Target,Weight,typeTrans,fraud\n"
        b"'C1','M1',2,'food',0\n'C1','M1',4,'food',0\n"
        b"'C2','M1',nan,'food',0\n'','M1',1,'food',0\n'C3','M1',1\n'C4','M2',1.5,'tech',0\n"
    )
    w = parse_weights(data)
    assert w.layout == "banksim" and w.skipped == 3 and w.rows == 6
    assert w.by_key == {("C1", "M1", "food"): 3.0, ("C4", "M2", "tech"): 1.5}
    bounded = parse_weights(
        b"CustomerId,transaction_type,weightage\n"
        b"C1,food,1e308\nC1,food,1e308\nC2,food,1.7e308\nC3,food,-1e15\nC4,food,-1.1e15\n"
        b"C5,fo\x00od,1\n"
    )  # SPEC 2.2: a weight whose magnitude exceeds 10^15 is skipped (and counted)
    assert bounded.by_key == {("C3", "", "food"): -1e15} and bounded.skipped == 5
    long_key = ("C" * 1000, "M" * 1000, "t" * 3000)
    row = f"{long_key[0]},{long_key[1]},2,{long_key[2]}\n".encode()
    banksim = parse_weights(b"Source,Target,Weight,typeTrans\n" + row)
    assert banksim.by_key == {long_key: 2.0} and banksim.skipped == 0
    seed = parse_weights(b"CustomerId,transaction_type,weightage\nC1,food,2\nC1,food,3\n")
    assert seed.by_key == {("C1", "", "food"): 2.5}
    assert seed.key_for("C1", "M7", "food") == ("C1", "", "food")


@settings(max_examples=200, derandomize=True)
@given(
    st.lists(
        st.lists(st.sampled_from(["C1", "'M2'", " 4.5 ", "-1", "x", "", "f", "M", "\x00",
                                  "\u00e9", "1e999"]), min_size=4, max_size=6),
        max_size=12,
    ),
    st.sampled_from(["\n", "\r\n"]),
)  # fmt: skip
def test_a_quote_free_chunk_parses_as_its_records_one_by_one(
    rows: list[list[str]], newline: str
) -> None:
    """parse_chunk decodes such a chunk at once: the same accepted and rejected records."""
    _parses_as_one_by_one(rows, newline)


def _parses_as_one_by_one(rows: Sequence[Sequence[str]], newline: str) -> None:
    """parse_chunk of a seed-layout chunk (chunk 2 of 30 rows) gives the transactions, value
    for value (-0 read as 0.0), and the rejects that parsing each record alone gives."""
    header = "CustomerId,MerchantId,transaction_value,gender,transaction_type"
    data = newline.join([header, *(",".join(r) for r in rows)]).encode() + b"\n"
    parsed = parse_chunk(data, 2, 30)
    layout = transactions_layout(SEED)
    one_by_one = [parse_transaction(60 + i, (",".join(r) + newline).encode(), layout)
                  for i, r in enumerate(rows)]  # fmt: skip
    expected = [t for t in one_by_one if isinstance(t, Transaction)]
    assert parsed.transactions == expected
    assert [repr(t.value) for t in parsed.transactions] == [repr(t.value) for t in expected]
    assert [(r.record, r.reason) for r in parsed.rejects] == [
        (r.record, r.reason) for r in one_by_one if not isinstance(r, Transaction)
    ]


_ACCEPTED = {  # field values each record would accept, and their neighbours that it rejects
    "id": ["C1", "'M2'", " 'C 3' ", "x" * 250, "x" * 251, "\u00e9" * 251, "", "''", "\x00"],
    "value": ["4.5", " 0 ", "-0", "'7'", "1e15", "1e3", "+.5", "1e16", "-1", "1e999", "nan", "1_0",
              "\u0661", ""],
    "gender": ["F", "m", " 'f' ", "X", ""],
    "kind": ["food", "'es_bar'", "", " a b "],
}  # fmt: skip
_COLUMNS = ("id", "id", "value", "gender", "kind")  # the seed layout's, in its order


@settings(max_examples=300, derandomize=True)
@given(
    st.lists(
        st.tuples(*(st.sampled_from(_ACCEPTED[kind][:4]) for kind in _COLUMNS)),
        max_size=30,
    ),
    st.lists(st.tuples(st.integers(0, 29), st.integers(0, 4), st.integers(0, 13)), max_size=2),
    st.sampled_from(["\n", "\r\n"]),
)  # fmt: skip
def test_a_clean_chunk_parsed_by_column_equals_its_records_parsed_one_by_one(
    rows: list[tuple[str, ...]], flips: list[tuple[int, int, int]], newline: str
) -> None:
    """Chunks of accepted records take the column-at-a-time path; a flip makes one field a
    value the record may reject (the whole chunk then goes one record at a time)."""
    table = [list(r) for r in rows]
    for row, column, choice in flips:
        if row < len(table):
            options = _ACCEPTED[_COLUMNS[column]]
            table[row][column] = options[choice % len(options)]
    _parses_as_one_by_one(table, newline)


def test_a_clean_chunk_is_parsed_by_column() -> None:
    lines = ["C1,'M2',4.5,f,food", " 'C 3' ,M2,-0,X,\r"]
    assert parse_lines(7, lines, transactions_layout(SEED)) == [
        Transaction(7, "C1", "M2", 4.5, "F", "food"), Transaction(8, "C 3", "M2", 0.0, "", "")]
    assert parse_lines(7, [*lines, "C1,M2,-1,F,food"], transactions_layout(SEED)) is None


def test_clean_column_is_clean_of_each_value() -> None:
    values = [" 'C1' ", "'  C1 '", "''C1''", "'", "  ", "'C1", "", "a'", " x "]
    assert clean_column(values) == [clean(v) for v in values]


def test_parse_numbers_is_parse_number_of_each_or_none() -> None:
    assert parse_numbers(["4.55", "-1", ".5", "1e3", "5.", "+.5e-1"]) == [
        parse_number(t) for t in ["4.55", "-1", ".5", "1e3", "5.", "+.5e-1"]
    ]
    for bad in ("inf", "nan", "1_000", "0x10", "", "1e999", "abc", "\u0661\u0662"):
        assert parse_numbers(["1", bad]) is None
