"""The arithmetic of PatId1's rank reads, kept pure (unit-tested without a database).

Terms (README, glossary): a merchant's **count floor** bounds which pairs copy their count
into ``top_n`` (so ``pairs_by_top_key`` indexes only the pairs near the top, and most pair
updates stay HOT); a **cursor** is a key of a rank index (``(value, customer)``) with its
rank, remembered from the last evaluation, so the next one steps from there instead of
reading from the index's end; a **band** is the range of keys between a merchant's last
thresholds and its new ones, the only pairs besides the touched ones that can newly hold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# A new count floor is set at this share of the count threshold, and rebuilt when the
# threshold grows so that the floor falls below RAISE_BELOW of it: the floor then trails the
# threshold by 10 to 20%, so the count rank stays above it while the index stays small.
FLOOR_SHARE = 0.9
RAISE_BELOW = 0.8


def new_floor(count_threshold: float) -> int:
    return max(1, math.floor(FLOOR_SHARE * count_threshold))


def floor_too_low(floor: int, count_threshold: float) -> bool:
    return floor < RAISE_BELOW * count_threshold


@dataclass(frozen=True)
class Cursor:
    """A key (value, customer) of a rank index and its rank: how many keys come before it."""

    key: float
    customer: str
    rank: int

    @staticmethod
    def of(key: float | None, customer: str | None, rank: int | None) -> Cursor | None:
        if key is None or customer is None or rank is None:
            return None
        return Cursor(key, customer, rank)


Page = tuple[str, float | None, str | None, int, int]  # start, key, customer, skip, take


def pages(first: int, last: int, cursor: Cursor | None) -> list[Page]:
    """The pages of a rank index that hold the keys at ranks first..last (adjacent): from
    the index's first key, or stepping from the cursor (on or after it, or before it; one of
    each when the two ranks straddle it)."""
    take = last - first + 1
    if cursor is None:
        return [("first", None, None, first, take)]
    key, customer = float(cursor.key), cursor.customer
    if first >= cursor.rank:
        return [("on", key, customer, first - cursor.rank, take)]
    if last < cursor.rank:
        return [("before", key, customer, cursor.rank - 1 - last, take)]
    return [("before", key, customer, 0, 1), ("on", key, customer, 0, 1)]
