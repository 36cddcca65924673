"""Tests of the brute-force oracle (tests/reference.py) on tiny hand-worked inputs.

Every expected detection below is worked out by hand in the comments, straight from SPEC.md.
Unless a test overrides them, settings are the SPEC defaults, under which nothing fires on inputs
this small (PatId1 needs N(m) > 50000, PatId2 n >= 80, PatId3 F(m) >= 1000), so each test only
enables the pattern it looks at.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

_REF_PATH = Path(__file__).resolve().parents[1] / "reference.py"
_spec = importlib.util.spec_from_file_location("txnpipe_test_reference", _REF_PATH)
ref = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ref  # dataclasses need the module registered
_spec.loader.exec_module(ref)

SEED_TX = "CustomerId,MerchantId,transaction_value,gender,transaction_type"
SEED_IMP = "CustomerId,transaction_type,weightage"
BS_TX = "step,customer,age,gender,zipcodeOri,merchant,zipMerchant,category,amount,fraud"
BS_IMP = "Source,Target,Weight,typeTrans"
NO_WEIGHTS = (SEED_IMP + "\n").encode()

U = ("PatId1", "UPGRADE")
CH = ("PatId2", "CHILD")
DEI = ("PatId3", "DEI-NEEDED")


def csv_bytes(header: str, *rows: str, eol: str = "\n") -> bytes:
    return (eol.join([header, *rows]) + eol).encode("utf-8")


def seed(*rows: str, eol: str = "\n") -> bytes:
    return csv_bytes(SEED_TX, *rows, eol=eol)


def points(transactions: bytes, importance: bytes = NO_WEIGHTS, **settings):
    return ref.reference_detections_by_point(transactions, importance, settings)


def flat(transactions: bytes, importance: bytes = NO_WEIGHTS, **settings):
    files = ref.reference_detections(transactions, importance, settings)
    return [row for f in files for row in f]


def row(pat, customer, merchant):
    return (pat[0], pat[1], customer, merchant)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values,p,expected",
    [
        ([1, 2, 3, 4], 0.99, 3.97),  # pos 2.97 -> 3 + 0.97*(4-3)
        ([1, 2, 3, 4], 0.2, 1.6),  # pos 0.6 -> 1 + 0.6*(2-1)
        ([4, 1, 3, 2], 0.5, 2.5),  # sorted first; pos 1.5 -> 2 + 0.5*1
        ([7], 0.99, 7),  # one value
        ([1, 2, 2, 2], 0.99, 2),  # pos 2.97 between two equal values
        ([1, 5, 9], 0.0, 1),
        ([1, 5, 9], 1.0, 9),
        ([1.0, 3.0, 10.0], 0.2, 1.8),  # pos 0.4 -> 1 + 0.4*2
    ],
)
def test_percentile_cont(values, p, expected):
    assert ref.percentile_cont(values, p) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "raw,cleaned",
    [
        ("C1", "C1"),
        ("  C1\t", "C1"),
        ("'C1'", "C1"),
        ("  ' C1 '  ", "C1"),  # white space, quotes, white space again
        ("''", ""),
        ("'", "'"),  # a lone quote is not a pair
        ("''C1''", "'C1'"),  # only one pair is removed
        ("'C1", "'C1"),
        ("C'1'", "C'1'"),
    ],
)
def test_clean_field(raw, cleaned):
    assert ref.clean_field(raw) == cleaned


@pytest.mark.parametrize(
    "text,value",
    [("1", 1.0), ("+1.5", 1.5), ("-2E-2", -0.02), ("1.", 1.0), (".5", 0.5), ("1e3", 1e3)]
    + [("007", 7.0)],
)
def test_parse_number_accepts(text, value):
    assert ref.parse_number(text) == value


@pytest.mark.parametrize(
    "text",
    ["", ".", "-", "abc", "inf", "-Infinity", "nan", "NaN", "1_000", "0x1A", "1e", "1e+", "1,5"]
    + ["1 2", "1e999", "١٢", "½"],
)
def test_parse_number_rejects(text):
    assert ref.parse_number(text) is None


# ------------------------------------------------------------------------------------------------
# CSV parsing, chunks
# ------------------------------------------------------------------------------------------------


def test_chunks_byte_for_byte_with_bom_crlf_empty_lines_and_quoted_newline():
    data = (
        b"\xef\xbb\xbfh1,h2\r\n"
        b"a,1\r\n"
        b"\r\n"  # empty line: not a record, not copied
        b'"b\nx",2\r\n'  # one record across two lines
        b"\n"  # empty line
        b"c,3"  # last record without a line ending
    )
    assert ref.reference_chunks(data, 2) == [
        b'h1,h2\r\na,1\r\n"b\nx",2\r\n',  # header without BOM, its own CRLF kept
        b"h1,h2\r\nc,3",  # short last chunk, bytes exactly as in the input
    ]
    assert ref.reference_chunks(data, 3) == [b'h1,h2\r\na,1\r\n"b\nx",2\r\nc,3']
    assert ref.reference_chunks(data, 1) == [
        b"h1,h2\r\na,1\r\n",
        b'h1,h2\r\n"b\nx",2\r\n',
        b"h1,h2\r\nc,3",
    ]


def test_chunks_of_header_only_input_is_empty():
    assert ref.reference_chunks(b"h1,h2\n", 5) == []
    assert ref.reference_chunks(b"h1,h2\n\n\n", 5) == []


def test_records_quoted_commas_doubled_quotes_and_crlf():
    data = b'a,b\r\n"x,1","say ""hi"""\r\n"multi\r\nline",\'q\'\r\nplain, sp \r\n'
    recs = [r.fields for r in ref._iter_records(data)]
    assert recs == [["a", "b"], ["x,1", 'say "hi"'], ["multi\r\nline", "'q'"], ["plain", " sp "]]


def test_quoted_customer_with_comma_and_newline_reaches_the_output():
    # Customer "C,1" and merchant "M\n1" (quoted); two records of value 5 at one merchant;
    # child_min_txns=2 -> n=2, avg=5 < 20 -> CHILD at the only evaluation point.
    # A doubled quote in a customer name: C"q has one record only (no detection).
    data = seed('"C,1","M\n1",5,F,t', '"C,1","M\n1",5,F,t', '"C""q",M2,5,F,t')
    assert ref.reference_rejects(data) == {}
    assert points(data, child_min_txns=2) == [[row(CH, "C,1", "M\n1")]]


# ------------------------------------------------------------------------------------------------
# rejects
# ------------------------------------------------------------------------------------------------


def test_rejects_each_reason():
    data = seed(
        "C1,M1,10,F,t",  # 0 ok
        "C1,M1,10,F",  # 1 too few fields
        "C1,M1,10,F,t,extra",  # 2 too many fields
        ",M1,10,F,t",  # 3 empty customer
        "'  ',M1,10,F,t",  # 4 customer empty after cleaning
        "C1, ,10,F,t",  # 5 empty merchant
        "C1,'',10,F,t",  # 6 merchant empty after cleaning
        "C1,M1,abc,F,t",  # 7 not a number
        "C1,M1,,F,t",  # 8 empty value
        "C1,M1,inf,F,t",  # 9 not finite
        "C1,M1,nan,F,t",  # 10 not finite
        "C1,M1,1_000,F,t",  # 11 strict parser
        "C1,M1,0x10,F,t",  # 12 strict parser
        "C1,M1,1e999,F,t",  # 13 overflows to infinity
        "C1,M1,-1,F,t",  # 14 negative
        "C1,M1,-0,F,t",  # 15 ok: -0 is not negative
        "C1,M1,'12.5',F,t",  # 16 ok: value in single quotes
        '"C1","M1","1,5",F,t',  # 17 "1,5" is not a number
        "   ",  # 18 a blank (not empty) line is a one-field record
        "",  # empty line: not a record
        "C1,M1,0,F,t",  # 19 ok: zero is fine
    )
    rejects = ref.reference_rejects(data)
    assert sorted(rejects) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 17, 18]
    assert "field" in rejects[1] and "field" in rejects[2] and "field" in rejects[18]
    assert "customer" in rejects[3] and "customer" in rejects[4]
    assert "merchant" in rejects[5] and "merchant" in rejects[6]
    for i in (7, 8, 9, 10, 11, 12, 13, 17):
        assert "number" in rejects[i]
    assert "negative" in rejects[14]


def test_rejected_records_count_toward_their_chunk():
    # chunk_rows=2, child_min_txns=2:
    #   chunk 0 = records 0,1: C1@M1 n=1 (record 1 is rejected) -> nothing
    #   chunk 1 = record 2:    C1@M1 n=2, avg 5 -> CHILD at evaluation point 1 (short last chunk)
    data = seed("C1,M1,5,F,t", "C1,M1,-5,F,t", "C1,M1,5,F,t")
    assert points(data, chunk_rows=2, child_min_txns=2) == [[], [row(CH, "C1", "M1")]]
    # with chunk_rows=3 all three records are one chunk
    assert points(data, chunk_rows=3, child_min_txns=2) == [[row(CH, "C1", "M1")]]


def test_rejected_record_takes_no_part_in_patterns():
    # C1@M1: accepted 5, rejected 'x' -> n=1 < 2: no CHILD
    data = seed("C1,M1,5,F,t", "C1,M1,x,F,t")
    assert points(data, child_min_txns=2) == [[]]


# ------------------------------------------------------------------------------------------------
# PatId2 CHILD
# ------------------------------------------------------------------------------------------------


def test_child_fires_per_evaluation_point():
    # chunk_rows=3, child_min_txns=2
    # chunk 0: C1@M1 10,20 -> n=2 avg 15 < 20 -> CHILD(C1,M1);  C2@M1 n=1
    # chunk 1: C2@M1 20,20 -> n=2 avg 20, not < 20;  C3@M2 5,5 -> n=2 avg 5 -> CHILD(C3,M2)
    data = seed(
        "C1,M1,10,F,t",
        "C1,M1,20,F,t",
        "C2,M1,20,M,t",
        "C2,M1,20,M,t",
        "C3,M2,5,F,t",
        "C3,M2,5,F,t",
    )
    got = points(data, chunk_rows=3, child_min_txns=2)
    assert got == [[row(CH, "C1", "M1")], [row(CH, "C3", "M2")]]


def test_child_boundaries():
    # child_min_txns=3: C1@M1 has 2 txns (no), C2@M1 has exactly 3 (yes, n >= 3)
    # C3@M1: avg exactly 20 -> not < 20;  C4@M1: avg 19.99 -> yes
    # C5@M1: 19.49+20.33+20.18 = 60 (mean 20) but float gives 19.999999999999996: eps -> no
    data = seed(
        "C1,M1,1,F,t", "C1,M1,1,F,t",
        "C2,M1,1,F,t", "C2,M1,1,F,t", "C2,M1,1,F,t",
        "C3,M1,10,F,t", "C3,M1,20,F,t", "C3,M1,30,F,t",
        "C4,M1,19.99,F,t", "C4,M1,19.99,F,t", "C4,M1,19.99,F,t",
        "C5,M1,19.49,F,t", "C5,M1,20.33,F,t", "C5,M1,20.18,F,t",
    )  # fmt: skip
    assert (19.49 + 20.33 + 20.18) / 3 < 20  # the float noise really is there
    assert points(data, child_min_txns=3) == [[row(CH, "C2", "M1"), row(CH, "C4", "M1")]]


def test_child_emitted_once_even_if_condition_stops_and_restarts():
    # chunk_rows=1, child_min_txns=2, all C1@M1:
    #   pt0: 10         n=1            -> no
    #   pt1: 10         n=2 avg 10     -> CHILD (first time)
    #   pt2: 40         n=3 avg 20     -> condition stops holding
    #   pt3: 0          n=4 avg 15     -> holds again: NOT emitted again
    data = seed("C1,M1,10,F,t", "C1,M1,10,F,t", "C1,M1,40,F,t", "C1,M1,0,F,t")
    assert points(data, chunk_rows=1, child_min_txns=2) == [[], [row(CH, "C1", "M1")], [], []]


# ------------------------------------------------------------------------------------------------
# PatId3 DEI-NEEDED
# ------------------------------------------------------------------------------------------------


def test_dei_fires_and_is_emitted_once():
    # dei_min_female_customers=1, ratio 0.5, chunk_rows=4
    # chunk 0: M1 has female A, males B, C, D -> F=1, M=3: 1 < 1.5 -> DEI(M1)
    # chunk 1: female E, female G, males H, I at M1 -> F=3, M=5: 3 < 2.5 false -> stops
    # chunk 2: males J, K, L, N -> F=3, M=9: 3 < 4.5 holds again -> not emitted again
    data = seed(
        "A,M1,1,F,t", "B,M1,1,M,t", "C,M1,1,M,t", "D,M1,1,M,t",
        "E,M1,1,F,t", "G,M1,1,F,t", "H,M1,1,M,t", "I,M1,1,M,t",
        "J,M1,1,M,t", "K,M1,1,M,t", "L,M1,1,M,t", "N,M1,1,M,t",
    )  # fmt: skip
    got = points(data, chunk_rows=4, dei_min_female_customers=1, dei_max_female_male_ratio=0.5)
    assert got == [[row(DEI, "", "M1")], [], []]


def test_dei_counts_distinct_customers_and_min_females():
    # dei_min_female_customers=2, ratio 1.0 (F < M)
    # M1: female A (3 txns), males B, C -> F=1 < min 2 -> no
    # M2: females A, X, males B, C, D   -> F=2 >= 2, 2 < 3 -> DEI(M2)
    # M3: females A, X, males B, C       -> F=2, 2 < 2 false -> no
    data = seed(
        "A,M1,1,F,t", "A,M1,1,F,t", "A,M1,1,F,t", "B,M1,1,M,t", "C,M1,1,M,t",
        "A,M2,1,F,t", "X,M2,1,F,t", "B,M2,1,M,t", "C,M2,1,M,t", "D,M2,1,M,t",
        "A,M3,1,F,t", "X,M3,1,F,t", "B,M3,1,M,t", "C,M3,1,M,t",
    )  # fmt: skip
    got = points(data, dei_min_female_customers=2, dei_max_female_male_ratio=1.0)
    assert got == [[row(DEI, "", "M2")]]


def test_dei_ratio_boundaries():
    # default ratio 0.1, dei_min_female_customers=1:
    # M1: 1 female, 10 males -> 1 < 0.1*10 = 1.0 false
    # M2: 1 female, 11 males -> 1 < 1.1 true -> DEI(M2)
    rows = ["F0,M1,1,F,t"] + [f"m{i},M1,1,M,t" for i in range(10)]
    rows += ["F0,M2,1,F,t"] + [f"m{i},M2,1,M,t" for i in range(11)]
    got = points(seed(*rows), dei_min_female_customers=1)
    assert got == [[row(DEI, "", "M2")]]


def test_dei_ratio_float_noise_is_absorbed_by_eps():
    # ratio 1.1, 50 males: 1.1*50 = 55.00000000000001 in floats; 55 females: 55 < 55 is false
    assert 1.1 * 50 > 55
    rows = [f"f{i},M1,1,F,t" for i in range(55)] + [f"m{i},M1,1,M,t" for i in range(50)]
    assert points(seed(*rows), dei_min_female_customers=1, dei_max_female_male_ratio=1.1) == [[]]
    # one female fewer: 54 < 55 -> fires
    rows = [f"f{i},M1,1,F,t" for i in range(54)] + [f"m{i},M1,1,M,t" for i in range(50)]
    got = points(seed(*rows), dei_min_female_customers=1, dei_max_female_male_ratio=1.1)
    assert got == [[row(DEI, "", "M1")]]


def test_gender_fixed_from_first_accepted_record():
    # X: first record rejected (value -1) with gender M -> does not fix the gender;
    #    first ACCEPTED record says 'f' (upper-cased: F) -> X is female for good;
    #    later record at M2 says M -> ignored.
    # Y, Z: male. E: gender 'E' -> neither.
    # dei_min_female_customers=1, ratio 1.0:
    #   M1: F={X}, M={Y,Z}      -> 1 < 2 -> DEI(M1)
    #   M2: F={X}, M={Y,Z}, E   -> 1 < 2 -> DEI(M2)  (X counts as female here too)
    #   M3: F={X}, M={Y}, E     -> 1 < 1 false
    data = seed(
        "X,M1,-1,M,t",
        "X,M1,1, 'f' ,t",
        "Y,M1,1,m,t",
        "Z,M1,1,M,t",
        "X,M2,1,M,t",
        "Y,M2,1,F,t",  # Y stays male
        "Z,M2,1,M,t",
        "E,M2,1,E,t",
        "X,M3,1,M,t",
        "Y,M3,1,M,t",
        "E,M3,1,F,t",  # E stays neither
    )
    got = points(data, dei_min_female_customers=1, dei_max_female_male_ratio=1.0)
    assert got == [[row(DEI, "", "M1"), row(DEI, "", "M2")]]


# ------------------------------------------------------------------------------------------------
# PatId1 UPGRADE
# ------------------------------------------------------------------------------------------------

UPGRADE_IMP = csv_bytes(
    SEED_IMP,
    "A,t1,1",
    "B,t1,2",  # B,t1 appears twice: weight = mean(2, 4) = 3
    "B,t1,4",
    "C,t1,10",
    "E,t1,abc",  # skipped: not a number
    ",t1,5",  # skipped: empty customer
    "F,t1",  # skipped: field count
    "G,t1,inf",  # skipped: not finite
)


def test_weights_mean_of_duplicates_and_skips():
    weights, skipped = ref.reference_weights(UPGRADE_IMP)
    assert weights == {("A", "t1"): 1.0, ("B", "t1"): 3.0, ("C", "t1"): 10.0}
    assert skipped == 4


def test_upgrade_fires():
    # M1: A x2 (w 1), B x2 (w 3), C x1 (w 10), D x2 (no weight: key (D,t1) absent). N(M1)=7 > 3.
    # n over customers: [1,2,2,2] -> Tn = percentile_cont(0.99): pos 2.97 -> 2 (equal neighbours)
    # w over customers with a w: [1,3,10] -> Tw = percentile_cont(0.2): pos 0.4 -> 1 + 0.4*2 = 1.8
    # A: n=2 >= 2 (equal counts) and w=1 <= 1.8 -> UPGRADE(A, M1)
    # B: w=3 > 1.8 no;  C: n=1 < 2 no;  D: no weight -> never
    data = seed(
        "A,M1,100,F,t1", "A,M1,100,F,t1", "B,M1,100,F,t1", "B,M1,100,F,t1",
        "C,M1,100,F,t1", "D,M1,100,F,t1", "D,M1,100,F,t1",
    )  # fmt: skip
    assert points(data, UPGRADE_IMP, upgrade_min_merchant_txns=3) == [[row(U, "A", "M1")]]
    # N(m) must be strictly greater than the threshold: N=7, threshold 7 -> nothing
    assert points(data, UPGRADE_IMP, upgrade_min_merchant_txns=7) == [[]]
    # Weight percentile 0.5: Tw = 3 -> B's w=3 <= 3 counts as well
    got = points(data, UPGRADE_IMP, upgrade_min_merchant_txns=3, upgrade_weight_percentile=0.5)
    assert got == [[row(U, "A", "M1"), row(U, "B", "M1")]]


def test_upgrade_weight_is_mean_over_transactions_that_have_one():
    # importance: (A,t1)=1, (A,t2)=5, (B,t1)=4, (C,t1)=2
    # M1: A: t1, t2, t9 -> n=3, w = mean(1, 5) = 3 (the t9 txn has no weight and is left out)
    #     B: t1 x3       -> n=3, w = 4
    #     C: t1          -> n=1, w = 2
    # N=7 > 0.  n [1,3,3] -> Tn(0.99): pos 1.98 -> 3.  w [2,3,4] -> Tw(0.5) = 3
    # A: 3 >= 3, 3 <= 3 -> UPGRADE;  B: 4 > 3 no;  C: 1 < 3 no
    imp = csv_bytes(SEED_IMP, "A,t1,1", "A,t2,5", "B,t1,4", "C,t1,2")
    data = seed(
        "A,M1,1,F,t1", "A,M1,1,F,t2", "A,M1,1,F,t9",
        "B,M1,1,F,t1", "B,M1,1,F,t1", "B,M1,1,F,t1",
        "C,M1,1,F,t1",
    )  # fmt: skip
    got = points(data, imp, upgrade_min_merchant_txns=0, upgrade_weight_percentile=0.5)
    assert got == [[row(U, "A", "M1")]]
    # with the default 0.2: Tw = 2 + 0.4*1 = 2.4 -> A (w 3) no longer qualifies
    assert points(data, imp, upgrade_min_merchant_txns=0) == [[]]


def test_upgrade_non_integer_count_threshold():
    # n [1,2,3,4] -> Tn(0.99) = 3.97: only the customer with n=4 qualifies (3 < 3.97)
    # every customer has weight 1 -> Tw = 1, w=1 <= 1 for all
    imp = csv_bytes(SEED_IMP, "A,t,1", "B,t,1", "C,t,1", "D,t,1")
    rows = ["A,M1,1,F,t"] + ["B,M1,1,F,t"] * 2 + ["C,M1,1,F,t"] * 3 + ["D,M1,1,F,t"] * 4
    assert points(seed(*rows), imp, upgrade_min_merchant_txns=0) == [[row(U, "D", "M1")]]


def test_upgrade_emitted_once():
    # importance: A=1, B=5 (type t).  upgrade_min_merchant_txns=0, chunk_rows=2, default percentiles
    # pt0: A,B one txn each at M1: n [1,1] -> Tn 1; w [1,5] -> Tw 1.8 -> A detected (emit)
    # pt1: B, B: n A1 B3 -> Tn = 1 + 0.99*2 = 2.98 -> A (1) no longer qualifies; B w=5 > 1.8
    # pt2: A, A: n A3 B3 -> Tn 3 -> A qualifies again -> NOT emitted again
    imp = csv_bytes(SEED_IMP, "A,t,1", "B,t,5")
    data = seed("A,M1,1,F,t", "B,M1,1,F,t", "B,M1,1,F,t", "B,M1,1,F,t", "A,M1,1,F,t", "A,M1,1,F,t")
    got = points(data, imp, upgrade_min_merchant_txns=0, chunk_rows=2)
    assert got == [[row(U, "A", "M1")], [], []]


# ------------------------------------------------------------------------------------------------
# Ordering and batching
# ------------------------------------------------------------------------------------------------


def test_ordering_within_and_across_evaluation_points():
    # child_min_txns=1 (every pair with avg < 20 is CHILD), dei_min_female_customers=1, ratio 1.0,
    # upgrade_min_merchant_txns=0 with weights (c9,t)=1, (B,t)=1; chunk_rows=6.
    # chunk 0 (records 0-5): pairs (b,M9) (B,M9) (a,M10) (Z,M10) (c9,M9) (x,M0 avg 50: no CHILD)
    #   PatId1: M10: no weights -> none.  M9: n [1,1,1] Tn 1; w [1,1] Tw 1 -> B and c9
    #           M0: only x, no weight -> none
    #   PatId2 by merchant, then customer
    #           (code points: "M0" < "M10" < "M9", "B" < "b" < "c9", "Z" < "a")
    #   PatId3: genders: b F, B M, a M, Z M, c9 M, x F
    #           M10: F=0 -> no.  M9: F=1 (b), M=2 -> 1 < 2 yes.  M0: F=1, M=0 -> no
    # chunk 1 (record 6): (y,M0) value 1 -> CHILD(y,M0); M0: F={x}, M={y} -> 1 < 1 no
    imp = csv_bytes(SEED_IMP, "c9,t,1", "B,t,1")
    data = seed(
        "b,M9,1,F,t",
        "B,M9,1,M,t",
        "a,M10,1,M,t",
        "Z,M10,1,M,t",
        "c9,M9,1,M,t",
        "x,M0,50,F,t",
        "y,M0,1,M,t",
    )
    got = points(
        data,
        imp,
        chunk_rows=6,
        child_min_txns=1,
        dei_min_female_customers=1,
        dei_max_female_male_ratio=1.0,
        upgrade_min_merchant_txns=0,
    )
    assert got == [
        [
            row(U, "B", "M9"),
            row(U, "c9", "M9"),
            row(CH, "Z", "M10"),
            row(CH, "a", "M10"),
            row(CH, "B", "M9"),
            row(CH, "b", "M9"),
            row(CH, "c9", "M9"),
            row(DEI, "", "M9"),
        ],
        [row(CH, "y", "M0")],
    ]


def test_batching_into_files():
    # child_min_txns=1: each of the 5 customers (value 1) is a CHILD at M1, C0..C4 in order
    data = seed(*[f"C{i},M1,1,F,t" for i in range(5)])
    expected = [row(CH, f"C{i}", "M1") for i in range(5)]
    files = ref.reference_detections(
        data, NO_WEIGHTS, {"child_min_txns": 1, "detection_batch_rows": 2}
    )
    assert files == [expected[0:2], expected[2:4], expected[4:5]]
    files = ref.reference_detections(
        data, NO_WEIGHTS, {"child_min_txns": 1, "detection_batch_rows": 5}
    )
    assert files == [expected]  # exactly full: no trailing empty file
    files = ref.reference_detections(data, NO_WEIGHTS, {"child_min_txns": 1})
    assert files == [expected]  # default 100 rows per file: one short file
    # batching ignores evaluation-point boundaries (chunk_rows=2 gives 3 points, same row stream)
    settings = {"child_min_txns": 1, "detection_batch_rows": 3, "chunk_rows": 2}
    files = ref.reference_detections(data, NO_WEIGHTS, settings)
    assert files == [expected[0:3], expected[3:5]]


def test_no_detections_no_files():
    assert ref.reference_detections(seed("C1,M1,1,F,t"), NO_WEIGHTS) == []
    assert ref.reference_detections(csv_bytes(SEED_TX), NO_WEIGHTS) == []


def test_detection_rows_are_independent_of_batch_size():
    data = seed(*[f"C{i % 3},M{i % 2},{i},F,t" for i in range(12)])
    base = flat(data, child_min_txns=1, chunk_rows=3)
    assert base  # something fires
    for size in (1, 2, 7):
        settings = {"child_min_txns": 1, "chunk_rows": 3, "detection_batch_rows": size}
        files = ref.reference_detections(data, NO_WEIGHTS, settings)
        assert [len(f) for f in files[:-1]] == [size] * (len(files) - 1)
        assert 1 <= len(files[-1]) <= size
        assert [r for f in files for r in f] == base
        assert len(files) == math.ceil(len(base) / size)


# ------------------------------------------------------------------------------------------------
# Layouts, headers, encodings
# ------------------------------------------------------------------------------------------------


def test_banksim_layout_with_quoted_values_and_merchant_keyed_weights():
    # BankSim importance keys (customer, merchant, typeTrans):
    #   (A, M1, cat)=1, (B, M1, cat)=5, (A, M2, cat)=9 (applies only at M2)
    # M1: A x2, B x1, both 'cat' -> n [1,2] Tn(0.99)=1.99 -> only A (n=2); w A=1, B=5 -> Tw=1.8
    #     -> UPGRADE(A, M1)
    # M2: A x1 (w 9), B x1 (no weight at M2) -> n [1,1] Tn 1; w [9] Tw 9 -> UPGRADE(A, M2)
    # CHILD with child_min_txns=2: A@M1 amounts 4.5, 5.5 -> avg 5 -> CHILD(A, M1)
    imp = csv_bytes(
        BS_IMP, "'A','M1',1,'cat'", "'A','M1',1,'cat'", "'B','M1',5,'cat'", "'A','M2',9,'cat'"
    )
    data = csv_bytes(
        BS_TX,
        "0,'A','2','F','28007','M1','28007','cat',4.5,'0'",
        "0,'A','2','F','28007','M1','28007','cat',5.5,'0'",
        "0,'B','2','M','28007','M1','28007','cat',50,'0'",
        "1,'A','2','F','28007','M2','28007','cat',50,'0'",
        "1,'B','2','M','28007','M2','28007','cat',50,'0'",
    )
    got = points(data, imp, upgrade_min_merchant_txns=1, child_min_txns=2)
    assert got == [[row(U, "A", "M1"), row(U, "A", "M2"), row(CH, "A", "M1")]]
    weights, skipped = ref.reference_weights(imp)
    assert weights == {("A", "M1", "cat"): 1.0, ("B", "M1", "cat"): 5.0, ("A", "M2", "cat"): 9.0}
    assert skipped == 0


def test_seed_transactions_with_seed_weights_ignore_merchant():
    # seed importance key (customer, type): A's weight 1 applies at every merchant
    imp = csv_bytes(SEED_IMP, "A,t,1")
    data = seed("A,M1,1,F,t", "A,M2,1,F,t")
    got = points(data, imp, upgrade_min_merchant_txns=0)
    assert got == [[row(U, "A", "M1"), row(U, "A", "M2")]]


def test_header_case_insensitive_cleaned_any_order_extra_columns():
    header = "extra, 'TRANSACTION_TYPE' ,gender,\"merchantid\",Transaction_Value,'customerId'"
    data = csv_bytes(header, "x,t,F,M1,5,C1", "y,t,F,M1,5,C1")
    assert points(data, child_min_txns=2) == [[row(CH, "C1", "M1")]]


def test_unknown_header_names_missing_columns():
    with pytest.raises(ValueError) as err:
        bad = csv_bytes("CustomerId,MerchantId,amount,gender", "C1,M1,1,F")
        ref.reference_detections(bad, NO_WEIGHTS)
    msg = str(err.value)
    assert "transaction_value" in msg and "transaction_type" in msg
    with pytest.raises(ValueError) as err:
        ref.reference_rejects(csv_bytes("a,b,c", "1,2,3"))
    assert "customer" in str(err.value)
    with pytest.raises(ValueError) as err:
        ref.reference_detections(seed("C1,M1,1,F,t"), csv_bytes("CustomerId,weightage", "C1,1"))
    assert "transaction_type" in str(err.value)
    with pytest.raises(ValueError):
        ref.reference_detections(b"", NO_WEIGHTS)


def test_crlf_bom_and_empty_lines_give_same_detections_as_plain_lf():
    rows = ["C1,M1,10,F,t", "C1,M1,10,F,t", "C2,M1,-1,F,t", "C2,M1,1,F,t", "C2,M1,1,F,t"]
    plain = seed(*rows)
    crlf = b"\xef\xbb\xbf" + seed(*rows, eol="\r\n")
    spaced = b"\xef\xbb\xbf\n" + seed(*rows).replace(b"\n", b"\n\n")
    # chunk_rows=3: pt0 C1@M1 n=2 -> CHILD(C1); pt1 C2@M1 n=2 (the -1 record rejected) -> CHILD(C2)
    expected = [[row(CH, "C1", "M1")], [row(CH, "C2", "M1")]]
    for data in (plain, crlf, spaced):
        assert ref.reference_rejects(data) == {2: "negative value"}
        assert points(data, chunk_rows=3, child_min_txns=2) == expected
    assert ref.reference_chunks(crlf, 3) == [
        (SEED_TX + "\r\n" + "\r\n".join(rows[:3]) + "\r\n").encode(),
        (SEED_TX + "\r\n" + "\r\n".join(rows[3:]) + "\r\n").encode(),
    ]


def test_bom_in_importance_and_crlf():
    imp = b"\xef\xbb\xbf" + csv_bytes(SEED_IMP, "A,t,2", "A,t,4", eol="\r\n")
    assert ref.reference_weights(imp) == ({("A", "t"): 3.0}, 0)


def test_settings_validation():
    with pytest.raises(ValueError):
        ref.reference_detections(seed("C1,M1,1,F,t"), NO_WEIGHTS, {"no_such_setting": 1})
    with pytest.raises(ValueError):
        ref.reference_detections(seed("C1,M1,1,F,t"), NO_WEIGHTS, {"chunk_rows": 0})


def test_upgrade_count_threshold_float_noise_counts_as_equal():
    # upgrade_count_percentile=0.28 over 26 customers: pos = 0.28*25 = 7 exactly, but in floats
    # 7.000000000000001, so Tn = v[7] + 1e-15*(v[8]-v[7]) = 1.0000000000000009 instead of 1.
    # c00..c07 have n=1 (sorted indices 0..7), c08..c25 have n=2; every weight is 1 -> Tw = 1.
    # Exactly, Tn = 1 and every customer qualifies: n=1 >= 1 holds within eps.
    assert 0.28 * 25 > 7
    imp = csv_bytes(SEED_IMP, *[f"c{i:02d},t,1" for i in range(26)])
    rows = [f"c{i:02d},M1,1,F,t" for i in range(8)]
    rows += [f"c{i:02d},M1,1,F,t" for i in range(8, 26)] * 2
    got = points(seed(*rows), imp, upgrade_min_merchant_txns=0, upgrade_count_percentile=0.28)
    assert got == [[row(U, f"c{i:02d}", "M1") for i in range(26)]]


def test_upgrade_weight_float_noise_counts_as_equal():
    # importance: (A,t1)=0.1, (A,t2)=0.2 -> w(A,M1) = (0.1+0.2)/2 = 0.15000000000000002 in floats;
    # B, C, D: 0.15; E: 1.  Everyone has n=2 -> Tn = 2.
    # w sorted [0.15, 0.15, 0.15, 0.15000000000000002, 1] -> Tw(0.2): pos 0.8 -> 0.15.
    # Exactly, w(A)=0.15 <= 0.15, so A qualifies within eps; E (1 > 0.15) does not.
    assert (0.1 + 0.2) / 2 > 0.15
    imp = csv_bytes(SEED_IMP, "A,t1,0.1", "A,t2,0.2", "B,t,0.15", "C,t,0.15", "D,t,0.15", "E,t,1")
    data = seed("A,M1,1,F,t1", "A,M1,1,F,t2", *[f"{c},M1,1,F,t" for c in "BCDE" for _ in range(2)])
    got = points(data, imp, upgrade_min_merchant_txns=0)
    assert got == [[row(U, c, "M1") for c in "ABCD"]]
