"""The two order-statistics structures the merchant walk keeps its percentiles in.

A merchant past the minimum can have tens of thousands of customers and is evaluated after
every chunk that touches it, so neither a sort per evaluation nor a flat sorted list (each
insertion moves every later element) scales. Pure Python, no dependency: the Glue job ships
txnpipe alone.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class CountHistogram:
    """How many customers have each count, and the count at a rank through a moving cursor.

    Counts are small integers that only grow, and an evaluation's rank moves little from the
    last one, so the cursor (a count and how many customers are below it) walks a few steps
    per evaluation; an update is O(1)."""

    def __init__(self) -> None:
        self._freq = [0, 0]  # customers by count; count 0 never occurs
        self.total = 0
        self._at = 1  # the cursor's count
        self._below = 0  # customers whose count is below ``_at``

    def add(self, count: int, by: int) -> None:
        if count >= len(self._freq):
            self._freq.extend([0] * (count + 1 - len(self._freq)))
        self._freq[count] += by
        self.total += by
        if count < self._at:
            self._below += by

    def at_rank(self, rank: int) -> int:
        """The count of 0-based ``rank`` among all customers' counts in ascending order."""
        if not 0 <= rank < self.total:
            raise IndexError(f"rank {rank} of {self.total}")
        freq = self._freq
        while rank < self._below:
            self._at -= 1
            self._below -= freq[self._at]
        while rank >= self._below + freq[self._at]:
            self._below += freq[self._at]
            self._at += 1
        return self._at


class SortedBuckets(Generic[T]):
    """A sorted multiset in buckets of at most ``2 * load`` items: insertion and removal move
    one bucket's items, not the whole set's; the item at a rank walks the bucket sizes."""

    def __init__(self, key: Callable[[T], Any] | None = None, load: int = 512) -> None:
        self._buckets: list[list[T]] = []
        self._maxes: list[T] = []
        self._load = load
        self._key = key
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def add(self, item: T) -> None:
        self._len += 1
        if not self._buckets:
            self._buckets.append([item])
            self._maxes.append(item)
            return
        i = min(bisect_left(self._maxes, item), len(self._buckets) - 1)  # type: ignore[arg-type]
        bucket = self._buckets[i]
        insort(bucket, item)  # type: ignore[type-var]
        self._maxes[i] = bucket[-1]
        if len(bucket) > 2 * self._load:
            self._buckets[i : i + 1] = [bucket[: self._load], bucket[self._load :]]
            self._maxes[i : i + 1] = [bucket[self._load - 1], bucket[-1]]

    def remove(self, item: T) -> None:
        i = bisect_left(self._maxes, item)  # type: ignore[arg-type]
        bucket = self._buckets[i] if i < len(self._buckets) else []
        j = bisect_left(bucket, item)  # type: ignore[arg-type]
        if j == len(bucket) or bucket[j] != item:
            raise KeyError(item)
        del bucket[j]
        self._len -= 1
        if bucket:
            self._maxes[i] = bucket[-1]
        else:
            del self._buckets[i], self._maxes[i]

    def at(self, rank: int) -> T:
        """The item of 0-based ``rank``."""
        if not 0 <= rank < self._len:
            raise IndexError(f"rank {rank} of {self._len}")
        for bucket in self._buckets:
            if rank < len(bucket):
                return bucket[rank]
            rank -= len(bucket)
        raise AssertionError("bucket sizes out of step with the length")

    def above(self, low: float | None, high: float) -> list[T]:
        """The items whose key is greater than ``low`` (any, when None) and at most ``high``."""
        key = self._key
        out: list[T] = []
        start = 0 if low is None else bisect_right(self._maxes, low, key=key)
        for bucket in self._buckets[start:]:
            lo = 0 if low is None else bisect_right(bucket, low, key=key)
            hi = bisect_right(bucket, high, key=key)
            out += bucket[lo:hi]
            if hi < len(bucket):
                break
        return out
