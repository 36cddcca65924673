"""Tests for txnpipe.tools.generate: the contract other tests rely on (names, headers, determinism, shape).

Parsing here is deliberately naive (split on commas, strip one pair of single quotes) and independent
of txnpipe's own reader, so a reader bug cannot hide a generator bug or the other way round.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType

import pytest

from txnpipe.tools.generate import (
    BANKSIM_IMPORTANCE_HEADER,
    BANKSIM_TRANSACTIONS_HEADER,
    CATEGORIES,
    FULL_ROWS,
    SEED_IMPORTANCE_HEADER,
    SEED_TRANSACTIONS_HEADER,
    GeneratedFiles,
    generate,
)

SMALL = 5_000


def _clean(field: str) -> str:
    field = field.strip()
    if len(field) >= 2 and field[0] == "'" and field[-1] == "'":
        field = field[1:-1]
    return field.strip()


def _records(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", "file must end with a line break"
    header = lines[0].split(",")
    return header, [[_clean(f) for f in line.split(",")] for line in lines[1:-1]]


def _accepted(path: Path, layout: str) -> list[tuple[str, str, float, str, str]]:
    """(customer, merchant, value, gender, category) of the records SPEC 2.2 accepts."""
    header, records = _records(path)
    cols = (1, 5, 8, 3, 7) if layout == "banksim" else (1, 2, 3, 4, 5)
    out = []
    for rec in records:
        if len(rec) != len(header):
            continue
        customer, merchant, value, gender, category = (rec[i] for i in cols)
        try:
            number = float(value)
        except ValueError:
            continue
        if customer and merchant and math.isfinite(number) and number >= 0:
            out.append((customer, merchant, number, gender, category))
    return out


@pytest.fixture(scope="module")
def small_banksim(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("bs"), rows=SMALL, seed=7, layout="banksim")


@pytest.fixture(scope="module")
def small_seed(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("seed"), rows=SMALL, seed=7, layout="seed")


def test_banksim_file_names_and_headers(small_banksim: GeneratedFiles) -> None:
    assert small_banksim.transactions.name == "bs140513_032310.csv"
    assert small_banksim.importance.name == "bsNET140513_032310.csv"
    tx_lines = small_banksim.transactions.read_text(encoding="utf-8").split("\n")
    imp_lines = small_banksim.importance.read_text(encoding="utf-8").split("\n")
    assert tx_lines[0] == BANKSIM_TRANSACTIONS_HEADER
    assert tx_lines[0] == "step,customer,age,gender,zipcodeOri,merchant,zipMerchant,category,amount,fraud"
    assert imp_lines[0] == BANKSIM_IMPORTANCE_HEADER == "Source,Target,Weight,typeTrans,fraud"
    # BankSim writes its text values in single quotes and its numbers bare.
    fields = tx_lines[1].split(",")
    assert all(fields[i].startswith("'") and fields[i].endswith("'") for i in range(1, 8))
    float(fields[8])
    assert fields[9] in ("0", "1")
    imp = imp_lines[1].split(",")
    assert imp[0].startswith("'C") and imp[1].startswith("'M") and imp[3].startswith("'es_")
    float(imp[2])


def test_seed_file_names_and_headers(small_seed: GeneratedFiles) -> None:
    assert small_seed.transactions.name == "transactions.csv"
    assert small_seed.importance.name == "CustomerImportance.csv"
    header, _ = _records(small_seed.transactions)
    assert ",".join(header) == SEED_TRANSACTIONS_HEADER
    assert SEED_TRANSACTIONS_HEADER == (
        "TransactionId,CustomerId,MerchantId,transaction_value,gender,transaction_type,step"
    )
    imp_header, _ = _records(small_seed.importance)
    assert ",".join(imp_header) == SEED_IMPORTANCE_HEADER == "CustomerId,transaction_type,weightage,fraud"
    assert "'" not in small_seed.transactions.read_text(encoding="utf-8")


@pytest.mark.parametrize("layout", ["banksim", "seed"])
@pytest.mark.parametrize("rows", [0, 1, 99, 1_234, SMALL])
def test_exact_record_count(tmp_path: Path, layout: str, rows: int) -> None:
    files = generate(tmp_path, rows=rows, seed=3, layout=layout)
    assert files.records == rows
    data = files.transactions.read_bytes()
    assert b"\r" not in data and b"\r" not in files.importance.read_bytes()
    assert data.count(b"\n") == rows + 1  # header + one line per record, no empty lines
    assert b"\n\n" not in data


@pytest.mark.parametrize("layout", ["banksim", "seed"])
def test_deterministic_byte_identical(tmp_path: Path, layout: str) -> None:
    a = generate(tmp_path / "a", rows=SMALL, seed=11, layout=layout)
    b = generate(tmp_path / "b", rows=SMALL, seed=11, layout=layout)
    assert a.transactions.read_bytes() == b.transactions.read_bytes()
    assert a.importance.read_bytes() == b.importance.read_bytes()
    c = generate(tmp_path / "c", rows=SMALL, seed=12, layout=layout)
    assert c.transactions.read_bytes() != a.transactions.read_bytes()


def test_layouts_carry_the_same_stream(small_banksim: GeneratedFiles, small_seed: GeneratedFiles) -> None:
    bs = _accepted(small_banksim.transactions, "banksim")
    seed = _accepted(small_seed.transactions, "seed")
    assert bs == seed


def test_unknown_layout_and_bad_rows_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="layout"):
        generate(tmp_path, rows=10, layout="csv")
    with pytest.raises(ValueError, match="rows"):
        generate(tmp_path, rows=-1)


@pytest.mark.parametrize("layout", ["banksim", "seed"])
def test_gender_consistent_per_customer(tmp_path: Path, layout: str) -> None:
    files = generate(tmp_path, rows=20_000, seed=5, layout=layout)
    header, records = _records(files.transactions)
    c_at, g_at = (1, 3) if layout == "banksim" else (1, 4)
    seen: dict[str, str] = {}
    genders: Counter[str] = Counter()
    for rec in records:
        if len(rec) != len(header) or not rec[c_at]:
            continue
        assert seen.setdefault(rec[c_at], rec[g_at]) == rec[g_at], rec[c_at]
        genders[rec[g_at]] += 1
    assert set(genders) <= {"F", "M", "E", "U"}
    assert genders["F"] > 0 and genders["M"] > 0


def test_steps_increase_and_span(small_banksim: GeneratedFiles) -> None:
    _, records = _records(small_banksim.transactions)
    steps = [int(rec[0]) for rec in records]
    assert steps[0] == 0 and steps[-1] == 179
    assert all(a <= b for a, b in itertools.pairwise(steps))


def test_shape_of_small_file(small_banksim: GeneratedFiles) -> None:
    header, records = _records(small_banksim.transactions)
    accepted = _accepted(small_banksim.transactions, "banksim")
    assert {r[4] for r in accepted} == set(CATEGORIES)
    merchants = Counter(r[1] for r in accepted)
    assert len(merchants) == 50
    (_, first), (_, second), (_, third) = merchants.most_common(3)
    assert first > 0.3 * SMALL and second > 0.2 * SMALL and third < 0.1 * SMALL
    # Bad records are planted through the stream, not appended, and every reject reason appears.
    bad = [i for i, rec in enumerate(records) if len(rec) != len(header) or not rec[1] or not rec[5]
           or not _finite_non_negative(rec[8])]
    assert len(records) - len(accepted) == len(bad) >= 8
    assert bad[0] < SMALL // 2 < bad[-1]
    bad_set = set(bad)
    values = [rec[8] for i, rec in enumerate(records) if i in bad_set and len(rec) == len(header)]
    assert {"abc", "inf", "NaN"} <= set(values) and any(v.startswith("-") for v in values)
    assert any(len(rec) < len(header) for rec in records)
    assert any(len(rec) > len(header) for rec in records)
    assert any(len(rec) == len(header) and not rec[1] for rec in records)


def _finite_non_negative(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value >= 0


@pytest.mark.parametrize("layout", ["banksim", "seed"])
def test_importance_has_duplicates_and_gaps(tmp_path: Path, layout: str) -> None:
    files = generate(tmp_path, rows=20_000, seed=7, layout=layout)
    accepted = _accepted(files.transactions, layout)
    header, records = _records(files.importance)
    keys: Counter[tuple[str, ...]] = Counter()
    for rec in records:
        if len(rec) != len(header) or not rec[0] or not _finite(rec[2]):
            continue
        keys[(rec[0], rec[1], rec[3]) if layout == "banksim" else (rec[0], rec[1])] += 1
    used = {(c, m, cat) if layout == "banksim" else (c, cat) for c, m, _, _, cat in accepted}
    assert sum(1 for k in keys if keys[k] > 1) > 0.02 * len(keys)
    missing = used - set(keys)
    assert 0 < len(missing) < 0.1 * len(used)
    assert set(keys) <= used
    # A few rows that SPEC 2.2 says to skip.
    assert len(records) - sum(keys.values()) >= 4


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _percentile_cont(values: list[float], p: float) -> float:
    ordered = sorted(values)
    at = p * (len(ordered) - 1)
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["banksim", "seed"])
def test_full_size_shape(tmp_path: Path, layout: str) -> None:
    """At the default size every pattern's structure is present at the final state (SPEC 6 defaults)."""
    files = generate(tmp_path, layout=layout)
    assert files.records == FULL_ROWS
    accepted = _accepted(files.transactions, layout)
    assert FULL_ROWS - 60 < len(accepted) < FULL_ROWS

    per_merchant = Counter(r[1] for r in accepted)
    big = [m for m, n in per_merchant.items() if n > 50_000]
    assert len(big) == 2

    mean = sum(r[2] for r in accepted) / len(accepted)
    assert 32 < mean < 45

    gender: dict[str, str] = {}
    pairs: dict[tuple[str, str], list[float]] = defaultdict(list)
    first_key: dict[tuple[str, str], str] = {}
    for customer, merchant, value, g, category in accepted:
        gender.setdefault(customer, g)
        pairs[(customer, merchant)].append(value)
        first_key.setdefault((customer, merchant), category)
    assert 4_000 < len({c for c, _ in pairs if gender[c] in "FM"})

    female: Counter[str] = Counter()
    male: Counter[str] = Counter()
    for customer, merchant in pairs:
        if gender[customer] == "F":
            female[merchant] += 1
        elif gender[customer] == "M":
            male[merchant] += 1
    dei = [m for m in per_merchant if male[m] >= 10_000 and 1_000 <= female[m] < 0.1 * male[m]]
    assert len(dei) == 1

    child = [k for k, v in pairs.items() if len(v) >= 80 and sum(v) / len(v) < 20 - 1e-9]
    assert child

    # PatId1 at the final state: someone in the top 1% by count with a mean weight in the bottom 20%.
    header, records = _records(files.importance)
    sums: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for rec in records:
        if len(rec) == len(header) and rec[0] and _finite(rec[2]):
            key = (rec[0], rec[1], rec[3]) if layout == "banksim" else (rec[0], rec[1])
            sums[key].append(float(rec[2]))
    weight = {k: sum(v) / len(v) for k, v in sums.items()}
    for merchant in big:
        counts = {c: len(v) for (c, m), v in pairs.items() if m == merchant}
        cat = first_key[next(k for k in pairs if k[1] == merchant)]
        w = {}
        for c in counts:
            key = (c, merchant, cat) if layout == "banksim" else (c, cat)
            if key in weight:
                w[c] = weight[key]
        tn = _percentile_cont(list(counts.values()), 0.99)
        tw = _percentile_cont(list(w.values()), 0.20)
        hits = [c for c, n in counts.items() if n >= tn and c in w and w[c] <= tw + 1e-9]
        assert hits, merchant


def _load_reference() -> ModuleType:
    """The independent oracle in tests/reference.py, loaded by path so no sys.path changes leak."""
    path = Path(__file__).resolve().parents[3] / "reference.py"
    if not path.exists():
        pytest.skip("tests/reference.py not present")
    spec = importlib.util.spec_from_file_location("txnpipe_test_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("layout", ["banksim", "seed"])
def test_every_pattern_fires_with_scaled_settings(tmp_path: Path, layout: str) -> None:
    """Small files keep the planted structures: with count thresholds scaled by rows / FULL_ROWS,
    the reference oracle finds all three patterns; at the defaults only CHILD (a per-customer
    count) can fire."""
    reference = _load_reference()
    rows = 20_000
    scale = rows / FULL_ROWS
    files = generate(tmp_path, rows=rows, seed=7, layout=layout)
    tx, imp = files.transactions.read_bytes(), files.importance.read_bytes()
    scaled = {
        "upgrade_min_merchant_txns": round(50_000 * scale),
        "dei_min_female_customers": round(1_000 * scale),
    }
    points = reference.reference_detections_by_point(tx, imp, scaled)
    found = Counter(row[0] for point in points for row in point)
    assert found["PatId1"] >= 1 and found["PatId2"] >= 1 and found["PatId3"] == 1
    # Detections start partway through, after the big merchants cross the scaled threshold.
    first_upgrade = min(k for k, point in enumerate(points) if any(r[0] == "PatId1" for r in point))
    assert first_upgrade > 0
    defaults = reference.reference_detections_by_point(tx, imp)
    assert {row[0] for point in defaults for row in point} == {"PatId2"}
    # Every bad record is rejected, and the importance file has rows to skip.
    assert len(reference.reference_rejects(tx)) >= 8
    assert reference.reference_weights(imp)[1] == 4
