"""What the generator plants into the stream: rows, records to reject, their stretches of the
stream, and the plan that gathers them."""

from __future__ import annotations

from dataclasses import dataclass

Row = tuple[int, int, str, int]
"""(customer index, merchant index, amount text, fraud flag).

Plain tuples rather than dataclasses in the hot path: the file has ~600k of them and the time budget
is tight."""

# Bad-record kinds, cycled so that every reject reason of SPEC 2.2 shows up even in short files.
BAD_KINDS: tuple[str, ...] = (
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
class BadRow:
    """A record the detector must reject; kept apart from Row so it never feeds the weight keys."""

    kind: str
    customer: int
    merchant: int
    amount: str


Planted = Row | BadRow


@dataclass(frozen=True)
class Group:
    """Rows that share a stretch of the stream; the stretch shapes when a detection can first fire."""

    rows: tuple[Planted, ...]
    lo: float
    hi: float


@dataclass(frozen=True)
class UpgradeCase:
    """A planted PatId1 customer; its weight is decided only after the stream, relative to Tw."""

    customer: int
    merchant: int
    role: str  # hit, hit_dup, near, near_dup, no_weight


@dataclass(frozen=True)
class Plan:
    groups: tuple[Group, ...]
    upgrades: tuple[UpgradeCase, ...]
    planted_rows: int
