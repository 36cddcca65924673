"""The rules behave the same in every engine: the inline detector on PostgreSQL, DuckDB and
Spark. Boundary streams put values exactly on each threshold (``<`` against ``<=``, ε,
percentile interpolation), so a changed comparison in any engine fails here; and a pattern
added to the catalogue by one declaration is detected alike by all three (README, "How to
add a pattern")."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from tests.functional import engines
from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit
from tests.reference import reference_detections_by_point
from txnpipe.core.chunkparse import parse_chunk
from txnpipe.core.detections import Detection
from txnpipe.core.keys import chunk_key
from txnpipe.core.rules import CATALOGUE, ThresholdRule
from txnpipe.core.rules.aggregates import FEMALES, MALES, MEAN_VALUE, MERCHANT_TXNS, PAIR_TXNS
from txnpipe.core.rules.expressions import Const, above, all_of, at_least
from txnpipe.core.rules.percentiles import EPS
from txnpipe.core.settings import Settings

ENGINES = [
    pytest.param(engines.inline, id="inline"),
    pytest.param(engines.duckdb, id="duckdb"),
    pytest.param(engines.spark, id="spark", marks=pytest.mark.slow),
]
SEED = "CustomerId,MerchantId,transaction_value,gender,transaction_type\n"
WEIGHTS = "CustomerId,transaction_type,weightage\n"
BOUNDARY_SETTINGS = Settings().replace({
    "chunk_rows": "100", "child_min_txns": "2", "child_max_avg_value": "10",
    "dei_min_female_customers": "2", "dei_max_female_male_ratio": "0.5",
    "upgrade_min_merchant_txns": "14", "upgrade_count_percentile": "0.375",
    "upgrade_weight_percentile": "0.5",
})  # fmt: skip


def _records() -> tuple[list[str], str]:
    rows: list[str] = []
    # PatId2 (n >= 2, mean value < 10 under ε), merchant CM
    rows += ["A1,CM,10,M,t\n", "A1,CM,10,M,t\n"]  # mean exactly 10: not below
    rows += ["A2,CM,9.9999999999,M,t\n", "A2,CM,10,M,t\n"]  # 10 - 5e-11: within ε, not below
    rows += ["A3,CM,9.999999996,M,t\n", "A3,CM,10,M,t\n"]  # 10 - 2e-9: below
    rows += ["A4,CM,1,M,t\n"]  # one transaction: n < 2
    rows += ["A5,CM,5,M,t\n", "A5,CM,5,M,t\n"]  # n exactly 2: at least
    edge = repr(10 - EPS)  # a mean of exactly 10 - ε: `<` is false there, `<=` would be true
    rows += [f"A6,CM,{edge},M,t\n", f"A6,CM,{edge},M,t\n"]
    # PatId3 (F >= 2 and F < 0.5 M under ε): DM has F=2, M=4 (2 < 2 is false); DN F=2, M=5
    for merchant, males in (("DM", 4), ("DN", 5)):
        rows += [f"{merchant}F{i},{merchant},50,F,t\n" for i in range(2)]
        rows += [f"{merchant}M{i},{merchant},50,M,t\n" for i in range(males)]
    rows += ["DOF0,DO,50,F,t\n"] + [f"DOM{i},DO,50,M,t\n" for i in range(10)]  # F < 2
    # PatId1 at UM (N = 15 > 14): counts 1..5 -> Tn = percentile 0.375 = 2.5, interpolated
    # (U2's n = 2 is below it); mean weights 9, 1, 3 + ε, 2, 3 -> Tw = 3, and U3's weight is
    # exactly Tw + ε: `<=` holds there, `<` would not. U3, U4, U5 hold.
    for i in range(1, 6):
        rows += [f"U{i},UM,100,M,u{i}\n"] * i
    weights = WEIGHTS + f"U1,u1,9\nU2,u2,1\nU3,u3,{3 + EPS!r}\nU4,u4,2\nU5,u5,3\n"
    return rows, weights


BOUNDARY_DETECTIONS = {
    Detection(0, 2, "CM", "A3"), Detection(0, 2, "CM", "A5"), Detection(0, 3, "DN", ""),
    Detection(0, 1, "UM", "U3"), Detection(0, 1, "UM", "U4"), Detection(0, 1, "UM", "U5"),
}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_meets_the_thresholds_exactly_where_spec_4_2_puts_them(
    engine: engines.Engine, tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    records, importance = _records()
    kit = engines.stream(tmp_path, "bounds", SEED, records, importance, s3_endpoint, bucket,
                         database_url, BOUNDARY_SETTINGS)  # fmt: skip
    found = engine(kit)
    assert found == BOUNDARY_DETECTIONS
    oracle = reference_detections_by_point(
        (SEED + "".join(records)).encode(), importance.encode(), BOUNDARY_SETTINGS.as_dict()
    )
    assert {(p, m, c) for p, _, c, m in oracle[0]} == {
        (f"PatId{d.pattern}", d.merchant, d.customer) for d in found}  # fmt: skip


# A pair rule and a merchant rule added by one declaration each (test-only patterns).
BIG_SPENDER = ThresholdRule(4, "BIG-SPENDER", "pair",
                            all_of(at_least(PAIR_TXNS, Const(3)), at_least(MEAN_VALUE, Const(200.0))))  # fmt: skip
FEMALE_MAJORITY = ThresholdRule(
    5, "FEMALE-MAJORITY", "merchant",
    all_of(above(MERCHANT_TXNS, Const(100)), at_least(FEMALES, Const(30)), above(FEMALES, MALES)),
)  # fmt: skip
EXTENDED = CATALOGUE.with_rules(BIG_SPENDER, FEMALE_MAJORITY)


def _plainly(kit: Kit) -> set[Detection]:
    """The two extra rules evaluated after every chunk, written out by hand."""
    pairs: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    merchants: dict[str, dict[str, object]] = defaultdict(lambda: {"n": 0, "customers": set()})
    gender: dict[str, str] = {}
    found: dict[tuple[int, str, str], int] = {}
    chunk = 0
    while kit.store.exists(chunk_key(kit.source, chunk)):
        data = kit.store.get(chunk_key(kit.source, chunk))
        for t in parse_chunk(data, chunk, kit.settings.chunk_rows).transactions:
            pair = pairs[t.merchant, t.customer]
            pair[0] += 1
            pair[1] += t.value
            gender.setdefault(t.customer, t.gender)
            merchants[t.merchant]["n"] += 1  # type: ignore[operator]
            merchants[t.merchant]["customers"].add(t.customer)  # type: ignore[union-attr]
        for (merchant, customer), (n, total) in pairs.items():
            if n >= 3 and total / n >= 200.0 - EPS:
                found.setdefault((4, merchant, customer), chunk)
        for merchant, m in merchants.items():
            females = sum(gender[c] == "F" for c in m["customers"])  # type: ignore[union-attr]
            males = sum(gender[c] == "M" for c in m["customers"])  # type: ignore[union-attr]
            if m["n"] > 100 and females >= 30 and females > males:  # type: ignore[operator]
                found.setdefault((5, merchant, ""), chunk)
        chunk += 1
    return {Detection(k, p, m, c) for (p, m, c), k in found.items()}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_pattern_added_by_one_declaration_is_detected_alike_by_every_engine(
    engine: engines.Engine, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    found = engine(kit, EXTENDED)
    extra = {d for d in found if d.pattern in (4, 5)}
    expected = _plainly(kit)
    assert {d.pattern for d in expected} == {4, 5}  # both rules fire on this stream
    assert extra == expected
    spec = reference_detections_by_point(ds.transactions.read_bytes(),
                                         ds.importance.read_bytes(), ds.settings.as_dict())  # fmt: skip
    assert {(k, p, m, c) for k, point in enumerate(spec) for p, _, c, m in point} == {
        (d.chunk, f"PatId{d.pattern}", d.merchant, d.customer)
        for d in found if d.pattern < 4}  # fmt: skip


MOVING_SETTINGS = BOUNDARY_SETTINGS.replace({"chunk_rows": "15"})


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_meets_patid1s_thresholds_as_they_move(
    engine: engines.Engine, tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """Chunk 0: counts 1, 3, 2, 4, 5 (Tn = 2.5) and weights 9, 1, 3 + ε, 2, 3 (Tw = 3).
    Chunk 1 adds three customers of one transaction: Tn falls to 1 and Tw stays 3, so U3,
    which chunk 1 does not touch, newly holds with its weight exactly Tw + ε (the inline
    engine finds it in the band between the last thresholds and the new ones)."""
    counts = {"U1": 1, "U2": 3, "U3": 2, "U4": 4, "U5": 5, "U6": 1, "U7": 1, "U8": 1}
    rows = [f"{c},UM,100,M,{c.lower()}\n" for c, n in counts.items() if c <= "U5" for _ in range(n)]
    rows += [f"{c},UM,100,M,{c.lower()}\n" for c in ("U6", "U7", "U8")]
    weights = WEIGHTS + "".join(f"{c},{c.lower()},{w}\n" for c, w in (
        ("U1", 9), ("U2", 1), ("U3", repr(3 + EPS)), ("U4", 2), ("U5", 3), ("U6", 3),
        ("U7", 0.5), ("U8", 10)))  # fmt: skip
    kit = engines.stream(tmp_path, "moving", SEED, rows, weights, s3_endpoint, bucket,
                         database_url, MOVING_SETTINGS)  # fmt: skip
    found = engine(kit)
    assert found == {Detection(0, 1, "UM", c) for c in ("U2", "U4", "U5")} | {
        Detection(1, 1, "UM", c) for c in ("U3", "U6", "U7")}  # fmt: skip
    oracle = reference_detections_by_point((SEED + "".join(rows)).encode(), weights.encode(),
                                           MOVING_SETTINGS.as_dict())  # fmt: skip
    assert [sorted(c for _, _, c, _ in point) for point in oracle] == [
        ["U2", "U4", "U5"], ["U3", "U6", "U7"]]  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_meets_patid1s_weight_threshold_as_it_rises(
    engine: engines.Engine, tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """Chunk 0: counts 5, 4, 3, 2, 1 (Tn = 2.5) and weights 1, 2, 4 + ε, 3, 5 (Tw = 3): U1
    and U2 hold. Chunk 1 adds U6 (one transaction, weight 4) and U7 (14, weight 10): Tn
    falls to 2.25, so the count threshold stays 3, and Tw rises to 4. U3, which chunk 1 does
    not touch, newly holds with its weight exactly the new Tw + ε: the inline engine finds it
    only in the band between the last weight threshold and the new one."""
    counts = {"U1": 5, "U2": 4, "U3": 3, "U4": 2, "U5": 1, "U6": 1, "U7": 14}
    rows = [f"{c},UM,100,M,{c.lower()}\n" for c, n in counts.items() for _ in range(n)]
    weights = WEIGHTS + "".join(f"{c},{c.lower()},{w}\n" for c, w in (
        ("U1", 1), ("U2", 2), ("U3", repr(4 + EPS)), ("U4", 3), ("U5", 5), ("U6", 4),
        ("U7", 10)))  # fmt: skip
    kit = engines.stream(tmp_path, "rising", SEED, rows, weights, s3_endpoint, bucket,
                         database_url, MOVING_SETTINGS)  # fmt: skip
    found = engine(kit)
    assert found == {Detection(0, 1, "UM", "U1"), Detection(0, 1, "UM", "U2"),
                     Detection(1, 1, "UM", "U3")}  # fmt: skip
    oracle = reference_detections_by_point((SEED + "".join(rows)).encode(), weights.encode(),
                                           MOVING_SETTINGS.as_dict())  # fmt: skip
    assert [sorted(c for _, _, c, _ in point) for point in oracle] == [["U1", "U2"], ["U3"]]
