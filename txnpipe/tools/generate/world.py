"""The generator's world: merchants and customers, the amount and fraud model of each category,
and the id pool that keeps every generated id unique."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

FULL_ROWS = 594_643
"""The size of the BankSim file; planted structures scale with ``rows / FULL_ROWS``."""

STEPS = 180
ZIPCODE = "28007"
ORDINARY_CUSTOMERS_AT_FULL = 4_100
MIN_ORDINARY_CUSTOMERS = 20
MERCHANTS = 50
BIG_MERCHANT_IDS: tuple[str, str] = ("M1823072687", "M348934600")
# Share of all records at the two big merchants: both end far above UPGRADE's minimum merchant
# count (50,000 at the defaults) at full size, but cross it at about 21% and 34% of the stream,
# so PatId1 detections start partway through.
BIG_SHARES: tuple[float, float] = (0.40, 0.25)

# Merchant roles by index: 0-1 big, 2-4 DEI plants (exclusive to planted customers), 5+ ordinary.
BIG_A, BIG_B, DEI, DEI_FEW_F, DEI_RATIO = 0, 1, 2, 3, 4
FIRST_SMALL = 5


@dataclass(frozen=True)
class Category:
    """Amount and fraud behaviour; lognormal so a few categories give the long tail BankSim has."""

    name: str
    mean: float
    sigma: float
    fraud_rate: float

    @property
    def mu(self) -> float:
        return math.log(self.mean) - self.sigma * self.sigma / 2.0


CATEGORY_TABLE: tuple[Category, ...] = (
    Category("es_transportation", 27.0, 0.6, 0.0),
    Category("es_food", 37.0, 0.7, 0.0),
    Category("es_health", 70.0, 0.9, 0.01),
    Category("es_wellnessandbeauty", 40.0, 0.8, 0.01),
    Category("es_fashion", 45.0, 0.8, 0.015),
    Category("es_barsandrestaurants", 35.0, 0.7, 0.01),
    Category("es_hyper", 40.0, 0.8, 0.02),
    Category("es_sportsandtoys", 90.0, 0.9, 0.1),
    Category("es_tech", 80.0, 0.9, 0.03),
    Category("es_home", 100.0, 0.9, 0.05),
    Category("es_hotelservices", 120.0, 1.0, 0.1),
    Category("es_otherservices", 100.0, 1.0, 0.1),
    Category("es_contents", 35.0, 0.7, 0.0),
    Category("es_travel", 250.0, 1.1, 0.3),
    Category("es_leisure", 150.0, 1.0, 0.3),
)
CATEGORIES: tuple[str, ...] = tuple(c.name for c in CATEGORY_TABLE)
CATEGORY_INDEX = {name: i for i, name in enumerate(CATEGORIES)}

# BankSim's marginal distributions of gender and age code.
_GENDERS: tuple[str, ...] = ("F", "M", "E", "U")
_GENDER_WEIGHTS: tuple[float, ...] = (0.5458, 0.4513, 0.0020, 0.0009)
_AGES: tuple[str, ...] = ("0", "1", "2", "3", "4", "5", "6", "U")
_AGE_WEIGHTS: tuple[float, ...] = (0.004, 0.098, 0.315, 0.247, 0.183, 0.105, 0.045, 0.003)


def cumulative(weights: tuple[float, ...] | list[float]) -> list[float]:
    # random.choices rebuilds this on every call otherwise, which costs ~1 s over 15k customers.
    out: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


_GENDER_CUM = cumulative(_GENDER_WEIGHTS)
_AGE_CUM = cumulative(_AGE_WEIGHTS)


@dataclass(frozen=True)
class Customer:
    cid: str
    gender: str
    age: str


@dataclass(frozen=True)
class Merchant:
    mid: str
    category: int


class World:
    """Customer and merchant tables plus the id pool that keeps every generated id unique."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.customers: list[Customer] = []
        self.merchants: list[Merchant] = []
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
        self.customers.append(Customer(cid, gender, age))
        return len(self.customers) - 1

    def add_merchants(self) -> None:
        """Fixed roles by index (``BIG_A`` ... ``FIRST_SMALL``), then the ordinary merchants."""
        for mid in BIG_MERCHANT_IDS:
            self._ids.add(mid)
            self.merchants.append(Merchant(mid, CATEGORY_INDEX["es_transportation"]))
        for name in ("es_fashion", "es_wellnessandbeauty", "es_fashion"):
            self.merchants.append(Merchant(self.new_id("M"), CATEGORY_INDEX[name]))
        # Ordinary merchants cycle through the other categories from the busiest down, so the
        # expensive categories (travel, leisure) land on quiet merchants and the overall mean
        # stays near BankSim's.
        order = (
            "es_food", "es_contents", "es_barsandrestaurants", "es_hyper", "es_wellnessandbeauty",
            "es_fashion", "es_health", "es_tech", "es_food", "es_otherservices",
            "es_sportsandtoys", "es_home", "es_hotelservices", "es_leisure", "es_travel",
        )  # fmt: skip
        for i in range(MERCHANTS - FIRST_SMALL):
            self.merchants.append(
                Merchant(self.new_id("M"), CATEGORY_INDEX[order[i % len(order)]])
            )

    def amount(self, merchant: int) -> str:
        cat = CATEGORY_TABLE[self.merchants[merchant].category]
        return f"{math.exp(cat.mu + cat.sigma * self.rng.gauss(0.0, 1.0)):.2f}"

    def fraud(self, merchant: int) -> int:
        cat = CATEGORY_TABLE[self.merchants[merchant].category]
        return 1 if self.rng.random() < cat.fraud_rate else 0


def cents(value: int) -> str:
    """``1999`` -> ``"19.99"``: amounts and weights as the files write them."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // 100}.{value % 100:02d}"


def cents_with_total(rng: random.Random, count: int, total: int, low: int = 100) -> list[int]:
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
