"""DuckDB batch engine: PatId1 candidates and whole-stream detections equal the oracle's.

The oracle (tests/reference.py) evaluates every pattern after every chunk by brute force; the
engine computes running states once and looks them up per point. Parity is checked on first
points (what gets emitted), on full per-point candidate sets, over the whole stream and over
ranges that are merged with emit-once afterwards (SPEC 4.4).
"""
from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest

from tests import reference as ref
from tests.batchdata import (
    DENSE,
    PROFILES,
    SCALED,
    Stream,
    make_stream,
    reference_points,
    reference_upgrade_first,
    threshold_crossings,
)
from txnpipe.batch import duckdb_engine
from txnpipe.batch.frames import SCHEMA, transactions_table
from txnpipe.core.detections import Detection, first_points, in_files
from txnpipe.core.weights import parse_weights


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Stream:
    return make_stream(tmp_path_factory.mktemp("batch"))


@pytest.fixture(scope="module")
def table(stream: Stream) -> pa.Table:
    return transactions_table(stream.indexed(), parse_weights(stream.importance), 500)


def reference_candidates(stream: Stream, settings: dict) -> set[tuple[int, str, str]]:
    """Every (k, merchant, customer) where PatId1 holds at k and chunk k touched the merchant,
    brute force from the oracle's parser, weights and percentile."""
    s = ref._settings(settings)
    txns, _ = ref._parse_transactions(stream.transactions)
    layout, weights, _ = ref._load_weights(stream.importance)
    pairs: dict[str, dict[str, list[float]]] = defaultdict(dict)  # m -> c -> [n, ws, wc]
    total: dict[str, int] = defaultdict(int)
    found: set[tuple[int, str, str]] = set()
    for k in range(0, len(txns), s["chunk_rows"]):
        touched = set()
        for t in txns[k : k + s["chunk_rows"]]:
            if t is None:
                continue
            key = (t.customer, t.type) if layout == "seed" else (t.customer, t.merchant, t.type)
            p = pairs[t.merchant].setdefault(t.customer, [0, 0.0, 0])
            p[0] += 1
            if key in weights:
                p[1] += weights[key]
                p[2] += 1
            total[t.merchant] += 1
            touched.add(t.merchant)
        point = k // s["chunk_rows"]
        for m in touched:
            if total[m] <= s["upgrade_min_merchant_txns"]:
                continue
            ws = {c: p[1] / p[2] for c, p in pairs[m].items() if p[2]}
            if not ws:
                continue
            counts = [p[0] for p in pairs[m].values()]
            tn = ref.percentile_cont(counts, s["upgrade_count_percentile"])
            tw = ref.percentile_cont(ws.values(), s["upgrade_weight_percentile"])
            for c, p in pairs[m].items():
                if c in ws and ref._ge(p[0], tn) and ref._le(ws[c], tw):
                    found.add((point, m, c))
    return found


# -- frames ---------------------------------------------------------------------------------


def test_table_holds_the_accepted_records_with_their_weights(
    stream: Stream, table: pa.Table
) -> None:
    assert table.schema == SCHEMA
    rejected = ref.reference_rejects(stream.transactions)
    assert rejected, "the generated stream has bad records"
    txns, _ = ref._parse_transactions(stream.transactions)
    records = table.column("record").to_pylist()
    assert records == sorted(set(range(len(txns))) - set(rejected))
    assert table.column("chunk").to_pylist() == [r // 500 for r in records]
    weights, _ = ref.reference_weights(stream.importance)
    for row in table.slice(0, 3000).to_pylist():
        t = txns[row["record"]]
        assert (row["customer"], row["merchant"], row["value"]) == (t.customer, t.merchant, t.value)
        assert row["weight"] == pytest.approx(weights.get((t.customer, t.merchant, t.type)))
    assert table.column("weight").null_count > 0  # ~3% of keys are absent by design


# -- PatId1 candidates -----------------------------------------------------------------------


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_whole_stream_first_points_equal_the_oracle(
    stream: Stream, table: pa.Table, profile: str
) -> None:
    settings = PROFILES[profile]
    expected = reference_upgrade_first(reference_points(stream, settings))
    assert expected, "the profile must make PatId1 fire"
    candidates = duckdb_engine.upgrade_candidates(table, settings, 0, stream.last)
    assert first_points(candidates) == expected


def test_candidates_are_the_first_of_every_point_brute_force_finds(
    stream: Stream, table: pa.Table
) -> None:
    """Only first points leave the engine: each key once, at the earliest point where the
    brute force (every point evaluated) finds it; never a later point where it holds again."""
    found = duckdb_engine.upgrade_candidates(table, DENSE, 0, stream.last)
    every = reference_candidates(stream, DENSE)
    assert len(every) > len(found) > 0  # keys hold at several points
    assert first_points(found) == first_points(every)
    assert len(found) == len({(c.merchant, c.customer) for c in found})


def test_ranges_merged_with_emit_once_equal_one_run(stream: Stream, table: pa.Table) -> None:
    """Split points chosen so that merchants cross upgrade_min inside a later range."""
    expected = reference_upgrade_first(reference_points(stream, DENSE))
    crossed = threshold_crossings(stream, DENSE["upgrade_min_merchant_txns"])
    crossings = sorted(set(crossed.values()))
    a = crossings[len(crossings) // 2] - 3
    b = crossings[-3] - 1
    assert any(a < c <= stream.last for c in crossings)
    for cuts in ([a], [a, b], [crossings[3]], [crossings[3] + 1], [1, 2, 3, a, b]):
        bounds = [0, *cuts, stream.last + 1]
        runs = []
        for first, stop in itertools.pairwise(bounds):
            got = duckdb_engine.upgrade_candidates(table, DENSE, first, stop - 1)
            assert all(first <= c.chunk < stop for c in got)
            runs.extend(got)
        assert first_points(runs) == expected, cuts


def test_merchants_walked_in_worker_processes_give_the_same_first_points(
    stream: Stream, table: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_process = duckdb_engine.upgrade_candidates(table, DENSE, 0, stream.last)
    monkeypatch.setattr(duckdb_engine, "PARALLEL_DELTAS", 0)
    monkeypatch.setattr(duckdb_engine.os, "sched_getaffinity", lambda pid: {0, 1})
    assert duckdb_engine.upgrade_candidates(table, DENSE, 0, stream.last) == in_process
    assert in_process


def test_a_range_ignores_chunks_after_its_last(stream: Stream, table: pa.Table) -> None:
    """Stats at k are cumulative over 0..k only: later chunks in the input change nothing."""
    last = 30
    prefix = transactions_table(stream.indexed()[: last + 1], parse_weights(stream.importance), 500)
    got = duckdb_engine.upgrade_candidates(table, DENSE, 20, last)
    assert got == duckdb_engine.upgrade_candidates(prefix, DENSE, 20, last)
    assert got  # the range is not trivially empty


def test_single_point_ranges(stream: Stream, table: pa.Table) -> None:
    whole = duckdb_engine.upgrade_candidates(table, DENSE, 0, stream.last)
    for k in range(18, 36):
        assert duckdb_engine.upgrade_candidates(table, DENSE, k, k) == [
            c for c in whole if c.chunk == k
        ]


def test_bad_range_and_empty_input() -> None:
    empty = SCHEMA.empty_table()
    with pytest.raises(ValueError):
        duckdb_engine.upgrade_candidates(empty, DENSE, 3, 2)
    assert duckdb_engine.upgrade_candidates(empty, DENSE, 0, 5) == []
    assert duckdb_engine.detections(empty, DENSE) == []
    assert duckdb_engine.upgrade_detections(empty, DENSE) == []


# -- whole-stream detections (backfill) ------------------------------------------------------


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_detections_equal_the_oracle_row_for_row(
    stream: Stream, table: pa.Table, profile: str
) -> None:
    settings = PROFILES[profile]
    points = reference_points(stream, settings)
    found = duckdb_engine.detections(table, settings)
    assert {r.pattern for r in found} == {1, 2, 3}
    assert [(r.chunk, r.file_row()) for r in found] == [
        (k, row) for k, rows in enumerate(points) for row in rows
    ]
    assert in_files(found, 100) == ref.reference_detections(
        stream.transactions, stream.importance, settings
    )
    upgrade = [r for r in found if r.pattern == 1]
    assert duckdb_engine.upgrade_detections(table, settings) == upgrade


def test_seed_layout_weights_by_customer_and_type(tmp_path: Path) -> None:
    seed_stream = make_stream(tmp_path, layout="seed", seed=11)
    table = transactions_table(seed_stream.indexed(), parse_weights(seed_stream.importance), 500)
    settings = {**SCALED, "upgrade_min_merchant_txns": 150,
                "upgrade_count_percentile": 0.5, "upgrade_weight_percentile": 0.5}  # fmt: skip
    points = reference_points(seed_stream, settings)
    found = duckdb_engine.detections(table, settings)
    assert sum(r.pattern == 1 for r in found) > 100
    assert [r.file_row() for r in found] == [row for rows in points for row in rows]


def test_hand_worked_ties_and_epsilon() -> None:
    """Merchant M, point 0: n = 1, 1, 2, 4 -> Tn(0.5) = 1.5; w = 0.1+0.2 (float noise), 0.3,
    0.5, none -> Tw(0.0) = min w; a customer at Tw up to float noise is detected (ε)."""
    rows = [
        # chunk, record, customer, merchant, value, gender, weight
        (0, 0, "A", "M", 1.0, "F", 0.1 + 0.2),
        (0, 1, "B", "M", 1.0, "M", 0.3),
        (0, 2, "C", "M", 1.0, "", 0.5),
        (0, 3, "C", "M", 1.0, "", 0.5),
        (0, 4, "D", "M", 1.0, "", None),
        (0, 5, "D", "M", 1.0, "", None),
        (0, 6, "D", "M", 1.0, "", None),
        (0, 7, "D", "M", 1.0, "", None),
    ]
    table = pa.Table.from_pylist([dict(zip(SCHEMA.names, r)) for r in rows], schema=SCHEMA)
    settings = {"upgrade_min_merchant_txns": 7, "upgrade_count_percentile": 0.5,
                "upgrade_weight_percentile": 0.0}  # fmt: skip
    # Tn = 1.5: A and B (n=1) are below it; C (n=2, w=0.5) is above Tn but not at Tw.
    assert duckdb_engine.upgrade_candidates(table, settings, 0, 0) == []
    settings["upgrade_count_percentile"] = 0.0  # Tn = 1: everyone with a weight qualifies on n
    got = duckdb_engine.upgrade_candidates(table, settings, 0, 0)
    assert [(c.merchant, c.customer) for c in got] == [("M", "A"), ("M", "B")]  # 0.3 ≈ 0.1+0.2
    settings["upgrade_min_merchant_txns"] = 8  # N(M) = 8 is not greater than 8
    assert duckdb_engine.upgrade_candidates(table, settings, 0, 0) == []
    assert Detection(0, 1, "M", "B").file_row() == ("PatId1", "UPGRADE", "B", "M")
