"""Values that pass validation never make a statement fail (issue 14, case 1; SPEC 2.2).

A chunk that fails every retry stops a stream for good on Lambda, so each case here runs the
real chunker and detector against PostgreSQL and moto and must end the stream with the
reference's detections.
"""
from __future__ import annotations

from pathlib import Path

import psycopg

from tests.functional.pipeline_kit import Kit
from tests.reference import reference_detections, reference_rejects, reference_weights
from txnpipe.core.settings import Settings

HEADER = "step,customer,age,gender,zipcodeOri,merchant,zipMerchant,category,amount,fraud\n"
IMPORTANCE = "Source,Target,Weight,typeTrans,fraud\n"


def _varied(n: int, start: int) -> str:
    """``n`` CJK characters (3 bytes each) that do not repeat, so nothing compresses them."""
    return "".join(chr(0x4E00 + (start + i * 7919) % 20000) for i in range(n))


# A customer and a merchant id of 999 bytes and a type of 3,000: too much for a b-tree entry.
LONG = ("C" + _varied(333, 1)[:-1] + "ab", "M" + _varied(333, 2)[:-1] + "ab", _varied(1000, 3))
SETTINGS = Settings().replace({
    "chunk_rows": "3", "detection_batch_rows": "2", "child_min_txns": "2",
    "child_max_avg_value": "1e16", "upgrade_min_merchant_txns": "1",
    "dei_min_female_customers": "1", "dei_max_female_male_ratio": "5",
})  # fmt: skip


def _record(customer: str, merchant: str, amount: str, kind: str = "food", gender: str = "F") -> str:
    return f"0,{customer},3,{gender},1,{merchant},1,{kind},{amount},0\n"


def _stream(tmp_path: Path, records: list[str], weights: list[str]) -> tuple[Path, Path]:
    tx = tmp_path / "poison.csv"
    tx.write_text(HEADER + "".join(records), encoding="utf-8")
    imp = tmp_path / "importance.csv"
    imp.write_text(IMPORTANCE + "".join(weights), encoding="utf-8")
    return tx, imp


def _run_stream(kit: Kit) -> None:
    chunks = kit.write_all_chunks()
    with psycopg.connect(kit.database_url, autocommit=True) as conn:
        kit.deliver(conn, kit.chunk_keys(chunks))


def test_extreme_values_and_weights_end_the_stream_with_the_reference_detections(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    records = [
        _record("C1", "M1", "1e308"), _record("C1", "M1", "1e308"),  # finite: over 10^15
        _record("C2", "M1", "1e15"), _record("C2", "M1", "1e15"),  # the bound itself
        _record("C3", "M1", "1.7e308"),
        _record("C4", "M2", "5"), _record("C4", "M2", "6"),  # weight 1.7e308 on both
        _record("C5", "M2", "7"), _record("C5", "M2", "8"),  # weight 1e308, given twice
        _record(LONG[0], LONG[1], "1", LONG[2]), _record(LONG[0], LONG[1], "2", LONG[2]),
        _record("C6", "M2", "-0", gender="M"),
    ]
    weights = [
        "C4,M2,1.7e308,food,0\n", "C5,M2,1e308,food,0\n", "C5,M2,1e308,food,0\n",
        "C2,M1,-1e15,food,0\n", "C2,M1,1e15,food,0\n",
        f"{LONG[0]},{LONG[1]},3,{LONG[2]},0\n", f"{LONG[0]},{LONG[1]},5,{LONG[2]},0\n",
    ]
    tx, imp = _stream(tmp_path, records, weights)
    kit = Kit.upload(s3_endpoint, bucket, database_url, SETTINGS, tx, imp)
    _run_stream(kit)

    expected = reference_detections(tx.read_bytes(), imp.read_bytes(), SETTINGS.as_dict())
    assert kit.detection_files() == expected and expected
    assert set(reference_rejects(tx.read_bytes())) == {0, 1, 4}
    rejects = kit.store.get("rejects/poison/chunk_000000.csv").decode()
    assert rejects.count("greater than 10^15") == 2
    assert "greater than 10^15" in kit.store.get("rejects/poison/chunk_000001.csv").decode()
    ref_weights, ref_skipped = reference_weights(imp.read_bytes())
    with psycopg.connect(database_url) as conn:
        stored = dict(conn.execute(
            "SELECT customer || '/' || kind, weight FROM txnpipe.weights").fetchall())  # fmt: skip
        pair_w = conn.execute(
            "SELECT w FROM txnpipe.pairs WHERE customer = %s", (LONG[0],)).fetchone()  # fmt: skip
    assert ref_skipped == 3 and len(stored) == len(ref_weights) == 2
    assert stored[f"{LONG[0]}/{LONG[2]}"] == 4.0 and pair_w == (4.0,)
