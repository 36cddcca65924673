"""Synthetic BankSim-shaped input files with planted pattern cases.

The real BankSim files are large, licensed separately and do not reliably contain every pattern of
SPEC 4.2 together with the near misses that catch off-by-one and rounding mistakes.  This generator
produces files with the same layouts (SPEC 2.1) and a similar shape, plus deliberately planted
customers and merchants so that, at the default size and the default settings of SPEC 6, every pattern
fires and several near misses do not.  Everything comes from one ``random.Random(seed)``, so a
(rows, seed, layout) triple always gives byte-identical files, which lets tests pin expectations.

Planted structures scale with ``rows`` (relative to the BankSim size of 594,643 records): the number
of ordinary customers and the DEI customer counts shrink proportionally, while per-customer behaviour
(about 145 transactions per ordinary customer, the 80/79-transaction CHILD cases) stays the same.
Small files therefore keep the structures, but PatId3 (and PatId1, whose merchant threshold is an
absolute count) only fire when their count settings are scaled down in the same proportion.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Union

__all__ = [
    "BANKSIM_IMPORTANCE_HEADER",
    "BANKSIM_IMPORTANCE_NAME",
    "BANKSIM_TRANSACTIONS_HEADER",
    "BANKSIM_TRANSACTIONS_NAME",
    "CATEGORIES",
    "FULL_ROWS",
    "GeneratedFiles",
    "LAYOUTS",
    "SEED_IMPORTANCE_HEADER",
    "SEED_IMPORTANCE_NAME",
    "SEED_TRANSACTIONS_HEADER",
    "SEED_TRANSACTIONS_NAME",
    "generate",
]

FULL_ROWS = 594_643
LAYOUTS: tuple[str, ...] = ("banksim", "seed")

BANKSIM_TRANSACTIONS_NAME = "bs140513_032310.csv"
BANKSIM_IMPORTANCE_NAME = "bsNET140513_032310.csv"
SEED_TRANSACTIONS_NAME = "transactions.csv"
SEED_IMPORTANCE_NAME = "CustomerImportance.csv"

BANKSIM_TRANSACTIONS_HEADER = (
    "step,customer,age,gender,zipcodeOri,merchant,zipMerchant,category,amount,fraud"
)
BANKSIM_IMPORTANCE_HEADER = "Source,Target,Weight,typeTrans,fraud"
SEED_TRANSACTIONS_HEADER = (
    "TransactionId,CustomerId,MerchantId,transaction_value,gender,transaction_type,step"
)
SEED_IMPORTANCE_HEADER = "CustomerId,transaction_type,weightage,fraud"

STEPS = 180
ZIPCODE = "28007"
ORDINARY_CUSTOMERS_AT_FULL = 4_100
MIN_ORDINARY_CUSTOMERS = 20
MERCHANTS = 50
BIG_MERCHANT_IDS: tuple[str, str] = ("M1823072687", "M348934600")
# Share of all records at the two big merchants: both end far above 50,000 at full size, but cross it
# at about 21% and 34% of the stream, so PatId1 detections start partway through.
BIG_SHARES: tuple[float, float] = (0.40, 0.25)
# Planted records may take at most this share of the file; on tiny files whole blocks are dropped
# (lowest priority first) rather than letting plants crowd out the ordinary traffic.
PLANT_BUDGET = 0.45
BAD_EVERY = 20_000

_BIG_A, _BIG_B, _DEI, _DEI_FEW_F, _DEI_RATIO = 0, 1, 2, 3, 4
_FIRST_SMALL = 5

Row = tuple[int, int, str, int]
"""(customer index, merchant index, amount text, fraud flag).

Plain tuples rather than dataclasses in the hot path: the file has ~600k of them and the time budget
is tight."""


@dataclass(frozen=True)
class GeneratedFiles:
    """Where the files went, so callers need not know each layout's file names."""

    transactions: Path
    importance: Path
    records: int


@dataclass(frozen=True)
class _Category:
    """Amount and fraud behaviour; lognormal so a few categories give the long tail BankSim has."""

    name: str
    mean: float
    sigma: float
    fraud_rate: float

    @property
    def mu(self) -> float:
        return math.log(self.mean) - self.sigma * self.sigma / 2.0


CATEGORY_TABLE: tuple[_Category, ...] = (
    _Category("es_transportation", 27.0, 0.6, 0.0),
    _Category("es_food", 37.0, 0.7, 0.0),
    _Category("es_health", 70.0, 0.9, 0.01),
    _Category("es_wellnessandbeauty", 40.0, 0.8, 0.01),
    _Category("es_fashion", 45.0, 0.8, 0.015),
    _Category("es_barsandrestaurants", 35.0, 0.7, 0.01),
    _Category("es_hyper", 40.0, 0.8, 0.02),
    _Category("es_sportsandtoys", 90.0, 0.9, 0.1),
    _Category("es_tech", 80.0, 0.9, 0.03),
    _Category("es_home", 100.0, 0.9, 0.05),
    _Category("es_hotelservices", 120.0, 1.0, 0.1),
    _Category("es_otherservices", 100.0, 1.0, 0.1),
    _Category("es_contents", 35.0, 0.7, 0.0),
    _Category("es_travel", 250.0, 1.1, 0.3),
    _Category("es_leisure", 150.0, 1.0, 0.3),
)
CATEGORIES: tuple[str, ...] = tuple(c.name for c in CATEGORY_TABLE)
_CAT = {name: i for i, name in enumerate(CATEGORIES)}

# BankSim's marginal distributions of gender and age code.
_GENDERS: tuple[str, ...] = ("F", "M", "E", "U")
_GENDER_WEIGHTS: tuple[float, ...] = (0.5458, 0.4513, 0.0020, 0.0009)
_AGES: tuple[str, ...] = ("0", "1", "2", "3", "4", "5", "6", "U")
_AGE_WEIGHTS: tuple[float, ...] = (0.004, 0.098, 0.315, 0.247, 0.183, 0.105, 0.045, 0.003)


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    # random.choices rebuilds this on every call otherwise, which costs ~1 s over 15k customers.
    out: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


_GENDER_CUM = _cumulative(_GENDER_WEIGHTS)
_AGE_CUM = _cumulative(_AGE_WEIGHTS)

# Bad-record kinds, cycled so that every reject reason of SPEC 2.2 shows up even in short files.
_BAD_KINDS: tuple[str, ...] = (
    "empty_customer",
    "negative_amount",
    "non_numeric_amount",
    "infinite_amount",
    "missing_field",
    "empty_merchant",
    "nan_amount",
    "extra_field",
)


@dataclass(frozen=True)
class _Customer:
    cid: str
    gender: str
    age: str


@dataclass(frozen=True)
class _Merchant:
    mid: str
    category: int


@dataclass(frozen=True)
class _BadRow:
    """A record the detector must reject; kept apart from Row so it never feeds the weight keys."""

    kind: str
    customer: int
    merchant: int
    amount: str


Planted = Union[Row, _BadRow]


@dataclass(frozen=True)
class _Group:
    """Rows that share a stretch of the stream; the stretch shapes when a detection can first fire."""

    rows: tuple[Planted, ...]
    lo: float
    hi: float


@dataclass(frozen=True)
class _UpgradeCase:
    """A planted PatId1 customer; its weight is decided only after the stream, relative to Tw."""

    customer: int
    merchant: int
    role: str  # hit, hit_dup, near, near_dup, no_weight


@dataclass(frozen=True)
class _Plan:
    groups: tuple[_Group, ...]
    upgrade_cases: tuple[_UpgradeCase, ...]
    planted_rows: int


class _World:
    """Customer and merchant tables plus the id pool that keeps every generated id unique."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.customers: list[_Customer] = []
        self.merchants: list[_Merchant] = []
        self._ids: set[str] = set()

    def new_id(self, prefix: str) -> str:
        while True:
            candidate = f"{prefix}{self.rng.randrange(10_000_000, 2_100_000_000)}"
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def add_customer(self, gender: str | None = None) -> int:
        rng = self.rng
        cid = self.new_id("C")
        if gender is None:
            gender = rng.choices(_GENDERS, cum_weights=_GENDER_CUM)[0]
        age = rng.choices(_AGES, cum_weights=_AGE_CUM)[0]
        self.customers.append(_Customer(cid, gender, age))
        return len(self.customers) - 1

    def amount(self, merchant: int) -> str:
        cat = CATEGORY_TABLE[self.merchants[merchant].category]
        return f"{math.exp(cat.mu + cat.sigma * self.rng.gauss(0.0, 1.0)):.2f}"

    def fraud(self, merchant: int) -> int:
        cat = CATEGORY_TABLE[self.merchants[merchant].category]
        return 1 if self.rng.random() < cat.fraud_rate else 0


def generate(
    out_dir: Path, rows: int = FULL_ROWS, seed: int = 7, layout: str = "banksim"
) -> GeneratedFiles:
    """Write a transactions file and its importance file into ``out_dir``.

    ``layout`` picks the file names and columns (SPEC 2.1); the underlying stream is the same for
    both layouts, so a seed gives comparable data whichever layout a test needs.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows must be a non-negative integer, got {rows!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if layout == "banksim":
        tx_path = out_dir / BANKSIM_TRANSACTIONS_NAME
        imp_path = out_dir / BANKSIM_IMPORTANCE_NAME
    else:
        tx_path = out_dir / SEED_TRANSACTIONS_NAME
        imp_path = out_dir / SEED_IMPORTANCE_NAME

    rng = random.Random(seed)
    world = _World(rng)
    scale = rows / FULL_ROWS
    frac = min(1.0, scale)
    _make_merchants(world)
    n_ordinary = max(MIN_ORDINARY_CUSTOMERS, round(ORDINARY_CUSTOMERS_AT_FULL * scale))
    activity = [rng.gammavariate(2.0, 1.0) for _ in range(n_ordinary)]
    for _ in range(n_ordinary):
        world.add_customer()
    plan = _make_plan(world, rows, frac, activity)
    slots = _place(rng, rows, plan.groups)
    bs_keys, seed_keys = _write_transactions(
        tx_path, layout, world, rows, slots, plan, n_ordinary, activity
    )
    _write_importance(imp_path, layout, world, n_ordinary, plan, bs_keys, seed_keys, rows)
    return GeneratedFiles(transactions=tx_path, importance=imp_path, records=rows)


def _make_merchants(world: _World) -> None:
    """Fixed roles by index: 0-1 big, 2-4 DEI plants (exclusive to planted customers), 5+ ordinary."""
    for mid in BIG_MERCHANT_IDS:
        world._ids.add(mid)
        world.merchants.append(_Merchant(mid, _CAT["es_transportation"]))
    for name in ("es_fashion", "es_wellnessandbeauty", "es_fashion"):
        world.merchants.append(_Merchant(world.new_id("M"), _CAT[name]))
    # Ordinary merchants cycle through the other categories from the busiest down, so the expensive
    # categories (travel, leisure) land on quiet merchants and the overall mean stays near BankSim's.
    order = (
        "es_food", "es_contents", "es_barsandrestaurants", "es_hyper", "es_wellnessandbeauty",
        "es_fashion", "es_health", "es_tech", "es_food", "es_otherservices", "es_sportsandtoys",
        "es_home", "es_hotelservices", "es_leisure", "es_travel",
    )
    for i in range(MERCHANTS - _FIRST_SMALL):
        world.merchants.append(_Merchant(world.new_id("M"), _CAT[order[i % len(order)]]))


def _cents(value: int) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // 100}.{value % 100:02d}"


def _cents_with_total(rng: random.Random, count: int, total: int, low: int = 100) -> list[int]:
    """Amounts whose exact sum is ``total`` cents, so a planted mean sits exactly on a boundary."""
    mean = total // count
    high = max(low, 2 * mean - low)
    values = [rng.randint(low, high) for _ in range(count)]
    diff = total - sum(values)
    i = 0
    while diff:
        step = 1 if diff > 0 else -1
        j = i % count
        share = max(1, abs(diff) // count)
        if step < 0:
            share = min(share, values[j] - low)
        if share > 0:
            values[j] += step * share
            diff -= step * share
        i += 1
    rng.shuffle(values)
    return values


def _make_plan(world: _World, rows: int, frac: float, activity: list[float]) -> _Plan:
    """Build every planted structure, then keep the blocks that fit the budget, in priority order."""
    rng = world.rng
    blocks: list[tuple[list[_Group], list[_UpgradeCase]]] = []

    # Bad records: about one per 20,000, but every kind at least once when the file allows it.
    n_bad = max(min(len(_BAD_KINDS), rows // 100), round(rows / BAD_EVERY))
    bad_rows: list[Planted] = []
    n_ordinary = len(activity)
    for i in range(n_bad):
        customer = rng.randrange(n_ordinary)
        merchant = rng.randrange(_FIRST_SMALL, MERCHANTS)
        bad_rows.append(
            _BadRow(_BAD_KINDS[i % len(_BAD_KINDS)], customer, merchant, world.amount(merchant))
        )
    blocks.append(([_Group(tuple(bad_rows), 0.0, 1.0)], []))

    blocks.append((_plan_child(world, frac), []))
    blocks.append((_plan_dei(world, frac), []))
    blocks.append(_plan_upgrade(world, rows, frac, activity))

    limit = PLANT_BUDGET * rows
    kept_groups: list[_Group] = []
    kept_cases: list[_UpgradeCase] = []
    used = 0
    for groups, cases in blocks:
        size = sum(len(g.rows) for g in groups)
        if size and used + size <= limit:
            kept_groups.extend(groups)
            kept_cases.extend(cases)
            used += size
    return _Plan(tuple(kept_groups), tuple(kept_cases), used)


def _plan_child(world: _World, frac: float) -> list[_Group]:
    """PatId2 hits and near misses, each customer squeezed into a quarter of the stream.

    Exact cent totals put means exactly on 19.99, 20.00 and 20.01, so float noise and the strict
    ``<`` of SPEC 4.2 decide them; the 79-record, rejected-record and split-merchant customers test
    that only accepted records of one (customer, merchant) count.
    """
    rng = world.rng
    small = list(range(_FIRST_SMALL + 3, _FIRST_SMALL + 25))
    cases: list[tuple[str, int, int]] = []  # (kind, count, total cents)
    # Enough plain hits that a default-size run yields more than one 100-row detection file.
    for _ in range(max(1, round(80 * frac))):
        cases.append(("plain", 80, 80 * rng.randint(1000, 1700)))
    cases.append(("plain", 80, 80 * 1999))
    if frac >= 0.5:
        cases.append(("plain", 150, 150 * 900))
    cases.append(("plain", 79, 79 * 1000))
    cases.append(("plain", 80, 80 * 2000))
    cases.append(("plain", 80, 80 * 2001))
    cases.append(("one_rejected", 80, 80 * 1000))
    cases.append(("split", 80, 80 * 1000))
    groups: list[_Group] = []
    for kind, count, total in cases:
        customer = world.add_customer()
        merchant = rng.choice(small)
        amounts = _cents_with_total(rng, count, total)
        planted: list[Planted] = []
        if kind == "split":
            other = rng.choice([m for m in small if m != merchant])
            for i, value in enumerate(amounts):
                planted.append((customer, merchant if i % 2 == 0 else other, _cents(value), 0))
        else:
            for value in amounts:
                planted.append((customer, merchant, _cents(value), 0))
        if kind == "one_rejected":
            victim = rng.randrange(count)
            planted[victim] = _BadRow("negative_amount", customer, merchant, _cents(amounts[victim]))
        start = rng.uniform(0.0, 0.75)
        groups.append(_Group(tuple(planted), start, start + 0.25))
    return groups


def _plan_dei(world: _World, frac: float) -> list[_Group]:
    """PatId3: one merchant that fires and two that miss by one female / by the ratio boundary.

    The three merchants are served only by these planted customers, so F and M are exact.  The
    firing merchant's records sit in the first 70% of the stream so its detection lands before the
    end; E and U customers are there to check that only F and M are counted.
    """
    rng = world.rng
    females = max(1, round(1000 * frac))
    males = 10 * females + max(1, females // 2)
    f_ids = [world.add_customer("F") for _ in range(females)]
    m_ids = [world.add_customer("M") for _ in range(males)]
    other_ids = [world.add_customer("E") for _ in range(round(40 * frac))]
    other_ids += [world.add_customer("U") for _ in range(round(20 * frac))]

    def visit(customers: list[int], merchant: int) -> list[Planted]:
        return [(c, merchant, world.amount(merchant), world.fraud(merchant)) for c in customers]

    fires = visit(f_ids + m_ids + other_ids, _DEI)
    one_female_short = visit(f_ids[: females - 1] + m_ids + other_ids, _DEI_FEW_F)
    ratio_boundary = visit(f_ids + m_ids[: 10 * females], _DEI_RATIO)
    return [
        _Group(tuple(fires), 0.0, 0.7),
        _Group(tuple(one_female_short), 0.0, 1.0),
        _Group(tuple(ratio_boundary), 0.0, 1.0),
    ]


def _plan_upgrade(
    world: _World, rows: int, frac: float, activity: list[float]
) -> tuple[list[_Group], list[_UpgradeCase]]:
    """PatId1: customers far above the busiest ordinary customer at each big merchant.

    Their records are spread over the whole stream so they stay in the top 1% at every evaluation
    point; whether they are hits or near misses is decided by the weights chosen later.
    """
    rng = world.rng
    total_activity = sum(activity)
    top_activity = max(activity)
    roles = (
        ["hit_dup"] + ["hit"] * max(0, round(5 * frac) - 1)
        + ["near_dup"] * (1 if frac >= 0.5 else 0) + ["near"] * round(2 * frac)
        + ["no_weight"] * round(1 * frac)
    )
    groups: list[_Group] = []
    cases: list[_UpgradeCase] = []
    for merchant, share in ((_BIG_A, BIG_SHARES[0]), (_BIG_B, BIG_SHARES[1])):
        busiest = share * rows * top_activity / total_activity
        for role in roles:
            customer = world.add_customer()
            count = max(1, round(busiest * rng.uniform(1.25, 1.6)))
            planted = tuple(
                (customer, merchant, world.amount(merchant), 0) for _ in range(count)
            )
            groups.append(_Group(planted, 0.0, 1.0))
            cases.append(_UpgradeCase(customer, merchant, role))
    return groups, cases


def _place(rng: random.Random, rows: int, groups: tuple[_Group, ...]) -> list[Planted | None]:
    """Scatter planted rows over random free slots within each group's stretch of the stream."""
    slots: list[Planted | None] = [None] * rows
    for group in groups:
        lo = min(rows - 1, int(group.lo * rows))
        hi = max(lo + 1, min(rows, int(group.hi * rows)))
        width = hi - lo
        for row in group.rows:
            for _ in range(64):
                pos = lo + rng.randrange(width)
                if slots[pos] is None:
                    break
            else:
                # The stretch is (nearly) full: take the next free slot anywhere, wrapping around.
                pos = lo + rng.randrange(width)
                while slots[pos] is not None:
                    pos = (pos + 1) % rows
            slots[pos] = row
    return slots


def _write_transactions(
    path: Path,
    layout: str,
    world: _World,
    rows: int,
    slots: list[Planted | None],
    plan: _Plan,
    n_ordinary: int,
    activity: list[float],
) -> tuple[dict[int, int], dict[int, int]]:
    """Fill the free slots with ordinary traffic and write the file in large blocks.

    Returns the weight keys that accepted records use, in first-seen order, each with whether any of
    its records was fraud: BankSim keys are ``customer * MERCHANTS + merchant`` and seed keys
    ``customer * len(CATEGORIES) + category`` (ints are far cheaper than tuples at this volume).
    """
    rng = world.rng
    merchants = world.merchants
    customers = world.customers
    n_cat = len(CATEGORIES)
    n_ordinary_rows = rows - plan.planted_rows

    planted_at = [0, 0]
    for group in plan.groups:
        for row in group.rows:
            if isinstance(row, tuple) and row[1] in (_BIG_A, _BIG_B):
                planted_at[row[1]] += 1
    share = [0.0] * MERCHANTS
    if n_ordinary_rows > 0:
        for big in (_BIG_A, _BIG_B):
            share[big] = max(0.0, BIG_SHARES[big] * rows - planted_at[big]) / n_ordinary_rows
    rest = max(0.0, 1.0 - share[_BIG_A] - share[_BIG_B])
    zipf = [1.0 / (k + 1) ** 0.8 for k in range(MERCHANTS - _FIRST_SMALL)]
    zsum = sum(zipf)
    for k, z in enumerate(zipf):
        share[_FIRST_SMALL + k] = rest * z / zsum
    pool = [m for m in range(MERCHANTS) if share[m] > 0.0]
    cum_m: list[float] = []
    acc = 0.0
    for m in pool:
        acc += share[m]
        cum_m.append(acc)
    cum_c: list[float] = []
    acc = 0.0
    for a in activity:
        acc += a
        cum_c.append(acc)
    ord_customers = rng.choices(range(n_ordinary), cum_weights=cum_c, k=max(0, n_ordinary_rows))
    ord_merchants = rng.choices(pool, cum_weights=cum_m, k=max(0, n_ordinary_rows))

    mus = [CATEGORY_TABLE[m.category].mu for m in merchants]
    sigmas = [CATEGORY_TABLE[m.category].sigma for m in merchants]
    fraud_rates = [CATEGORY_TABLE[m.category].fraud_rate for m in merchants]
    cats = [m.category for m in merchants]
    banksim = layout == "banksim"
    if banksim:
        cust_text = [f"'{c.cid}','{c.age}','{c.gender}','{ZIPCODE}'," for c in customers]
        merch_text = [
            f"'{m.mid}','{ZIPCODE}','{CATEGORIES[m.category]}'," for m in merchants
        ]
    else:
        cust_text = [c.cid for c in customers]
        merch_text = [m.mid for m in merchants]
    genders = [c.gender for c in customers]
    cat_names = list(CATEGORIES)

    bs_keys: dict[int, int] = {}
    seed_keys: dict[int, int] = {}
    gauss = rng.gauss  # exp(mu + sigma * gauss) is a lognormal draw at half lognormvariate's cost
    exp = math.exp
    rnd = rng.random
    lines: list[str] = []
    j = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write((BANKSIM_TRANSACTIONS_HEADER if banksim else SEED_TRANSACTIONS_HEADER) + "\n")
        for i in range(rows):
            step = i * STEPS // rows
            slot = slots[i]
            if slot is None:
                c = ord_customers[j]
                m = ord_merchants[j]
                j += 1
                amount = f"{exp(mus[m] + sigmas[m] * gauss(0.0, 1.0)):.2f}"
                fraud = 1 if rnd() < fraud_rates[m] else 0
            elif isinstance(slot, _BadRow):
                lines.append(_bad_line(slot, layout, world, i, step))
                continue
            else:
                c, m, amount, fraud = slot
            key = c * MERCHANTS + m
            if key not in bs_keys or fraud:
                bs_keys[key] = bs_keys.get(key, 0) | fraud
            key = c * n_cat + cats[m]
            if key not in seed_keys or fraud:
                seed_keys[key] = seed_keys.get(key, 0) | fraud
            if banksim:
                lines.append(f"{step},{cust_text[c]}{merch_text[m]}{amount},{fraud}")
            else:
                lines.append(
                    f"T{i:08d},{cust_text[c]},{merch_text[m]},{amount},{genders[c]},"
                    f"{cat_names[cats[m]]},{step}"
                )
            if len(lines) >= 65_536:
                out.write("\n".join(lines))
                out.write("\n")
                lines.clear()
        if lines:
            out.write("\n".join(lines))
            out.write("\n")
    return bs_keys, seed_keys


def _bad_line(bad: _BadRow, layout: str, world: _World, index: int, step: int) -> str:
    """Format one rejectable record; each kind breaks exactly one rule of SPEC 2.2."""
    customer = world.customers[bad.customer]
    merchant = world.merchants[bad.merchant]
    category = CATEGORIES[merchant.category]
    amount = {
        "negative_amount": "-" + bad.amount if bad.amount != "0.00" else "-1.00",
        "non_numeric_amount": "abc",
        "infinite_amount": "inf",
        "nan_amount": "NaN",
    }.get(bad.kind, bad.amount)
    if layout == "banksim":
        cid = "''" if bad.kind == "empty_customer" else f"'{customer.cid}'"
        mid = "''" if bad.kind == "empty_merchant" else f"'{merchant.mid}'"
        fields = [
            str(step), cid, f"'{customer.age}'", f"'{customer.gender}'", f"'{ZIPCODE}'", mid,
            f"'{ZIPCODE}'", f"'{category}'", amount, "0",
        ]
        if bad.kind == "missing_field":
            del fields[6]
    else:
        cid = "" if bad.kind == "empty_customer" else customer.cid
        mid = "" if bad.kind == "empty_merchant" else merchant.mid
        fields = [f"T{index:08d}", cid, mid, amount, customer.gender, category, str(step)]
        if bad.kind == "missing_field":
            del fields[4]
    if bad.kind == "extra_field":
        fields.append("0")
    return ",".join(fields)


def _write_importance(
    path: Path,
    layout: str,
    world: _World,
    n_ordinary: int,
    plan: _Plan,
    bs_keys: dict[int, int],
    seed_keys: dict[int, int],
    rows: int,
) -> None:
    """Weights per key, with ~5% duplicated keys (whose rows average to the weight), ~3% keys absent,
    planted PatId1 weights set relative to each big merchant's Tw, and a few rows to be skipped."""
    rng = world.rng
    n_cat = len(CATEGORIES)
    transport = _CAT["es_transportation"]
    # Base weight per (customer, category): the seed key itself, and the BankSim weight at the big
    # merchants, so PatId1 sees the same w(c, m) in both layouts.
    base: dict[int, tuple[int, bool, bool]] = {}
    mu = math.log(30.0) - 0.7 * 0.7 / 2.0
    for key in seed_keys:
        weight = max(1, round(rng.lognormvariate(mu, 0.7) * 100))
        base[key] = (weight, rng.random() < 0.03, rng.random() < 0.05)

    overrides = _upgrade_weights(rng, plan, bs_keys, base, n_ordinary)

    entries: list[tuple[float, str]] = []
    n_keys = len(bs_keys) if layout == "banksim" else len(seed_keys)

    def emit(index: int, weights: list[int], render: str) -> None:
        entries.append((float(index), render.format(w=_cents(weights[0]))))
        later = sorted(rng.uniform(index, n_keys) for _ in weights[1:])
        for position, weight in zip(later, weights[1:]):
            entries.append((position, render.format(w=_cents(weight))))

    def split(weight: int, duplicated: bool) -> list[int]:
        if not duplicated or weight < 2:
            return [weight]
        d = rng.randint(1, weight - 1)
        return [weight - d, weight + d]

    customers = world.customers
    merchants = world.merchants
    if layout == "banksim":
        for index, (key, fraud) in enumerate(bs_keys.items()):
            c, m = divmod(key, MERCHANTS)
            cat = merchants[m].category
            render = (
                f"'{customers[c].cid}','{merchants[m].mid}',{{w}},'{CATEGORIES[cat]}',{fraud}"
            )
            if c in overrides:
                weights = overrides[c]
            elif m in (_BIG_A, _BIG_B):
                weight, absent, duplicated = base[c * n_cat + cat]
                weights = [] if absent else split(weight, duplicated)
            else:
                jitter = rng.uniform(0.7, 1.4)
                absent = rng.random() < 0.03
                duplicated = rng.random() < 0.05
                weight = max(1, round(base[c * n_cat + cat][0] * jitter))
                weights = [] if absent else split(weight, duplicated)
            if weights:
                emit(index, weights, render)
    else:
        for index, (key, fraud) in enumerate(seed_keys.items()):
            c, cat = divmod(key, n_cat)
            render = f"{customers[c].cid},{CATEGORIES[cat]},{{w}},{fraud}"
            if c in overrides and cat == transport:
                weights = overrides[c]
            else:
                weight, absent, duplicated = base[key]
                weights = [] if absent else split(weight, duplicated)
            if weights:
                emit(index, weights, render)

    # Rows SPEC 2.2 says to skip: they reuse real keys, so a reader that keeps them corrupts a mean.
    keys = bs_keys if layout == "banksim" else seed_keys
    divisor = MERCHANTS if layout == "banksim" else n_cat
    ordinary_keys = [k for k in keys if k // divisor < n_ordinary]
    if rows >= 100 and ordinary_keys:
        for kind in ("empty_customer", "nan_weight", "infinite_weight", "missing_field"):
            c, rest = divmod(ordinary_keys[rng.randrange(len(ordinary_keys))], divisor)
            if layout == "banksim":
                q = "'"
                mid = merchants[rest].mid
                cat = CATEGORIES[merchants[rest].category]
                fields = [f"'{customers[c].cid}'", f"'{mid}'", "12.50", f"'{cat}'", "0"]
            else:
                q = ""
                fields = [customers[c].cid, CATEGORIES[rest], "12.50", "0"]
            if kind == "empty_customer":
                fields[0] = q + q
            elif kind == "nan_weight":
                fields[2] = "nan"
            elif kind == "infinite_weight":
                fields[2] = "inf"
            else:
                del fields[1]
            text = ",".join(fields)
            entries.append((rng.uniform(0, n_keys), text))

    entries.sort(key=lambda e: e[0])
    header = BANKSIM_IMPORTANCE_HEADER if layout == "banksim" else SEED_IMPORTANCE_HEADER
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(header + "\n")
        block: list[str] = []
        for _, line in entries:
            block.append(line)
            if len(block) >= 65_536:
                out.write("\n".join(block) + "\n")
                block.clear()
        if block:
            out.write("\n".join(block) + "\n")


def _upgrade_weights(
    rng: random.Random,
    plan: _Plan,
    bs_keys: dict[int, int],
    base: dict[int, tuple[int, bool, bool]],
    n_ordinary: int,
) -> dict[int, list[int]]:
    """Weight rows (cents) for the planted PatId1 customers, placed against the final Tw estimate.

    Hits sit well below the 20th percentile; near misses sit a few dozen ranks above it, far enough
    that the small drift of Tw between evaluation points does not reach them.  The ``_dup`` variants
    have rows on both sides of Tw, so only the mean (SPEC 2.2) classifies them correctly.
    """
    n_cat = len(CATEGORIES)
    transport = _CAT["es_transportation"]
    overrides: dict[int, list[int]] = {}
    for merchant in (_BIG_A, _BIG_B):
        cases = [case for case in plan.upgrade_cases if case.merchant == merchant]
        if not cases:
            continue
        present: list[int] = []
        for key in bs_keys:
            c, m = divmod(key, MERCHANTS)
            if m == merchant and c < n_ordinary:
                weight, absent, _ = base[c * n_cat + transport]
                if not absent:
                    present.append(weight)
        present.sort()
        if not present:
            present = [3000]
        hits = sum(1 for case in cases if case.role.startswith("hit"))
        nears = sum(1 for case in cases if case.role.startswith("near"))
        rank = 0.2 * (len(present) + hits + nears - 1)
        at = min(len(present) - 1, max(0, math.ceil(rank) - hits))
        tw = present[at]
        gap = max(1, round(0.006 * len(present)))
        near_index = 0
        for case in cases:
            if case.role == "hit":
                overrides[case.customer] = [max(1, round(tw * rng.uniform(0.15, 0.6)))]
            elif case.role == "hit_dup":
                weight = max(1, round(tw * 0.85))
                high = round(tw * 1.4)
                overrides[case.customer] = [high, max(1, 2 * weight - high)]
            elif case.role in ("near", "near_dup"):
                k = min(len(present) - 2, at + gap + near_index) if len(present) > 1 else 0
                near_index += 1
                weight = (present[k] + present[min(k + 1, len(present) - 1)]) // 2
                weight = max(weight, present[min(at + 1, len(present) - 1)] + 1)
                if case.role == "near":
                    overrides[case.customer] = [weight]
                else:
                    low = max(1, weight // 2)
                    overrides[case.customer] = [low, 3 * weight - 2 * low, low]
            else:
                overrides[case.customer] = []
    return overrides
