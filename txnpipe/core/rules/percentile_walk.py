"""PatId1 by walking one merchant's chunks in stream order: O(deltas · log customers).

PatId1 is a per-merchant question, so a batch engine partitions by merchant and hands each
merchant's per-chunk pair deltas, in chunk order, to a ``MerchantWalk``. The walk keeps the
merchant's state as the streaming detector does after each chunk, and emits each customer at
its first point, never a pair state per point:

- the count percentile from a Fenwick tree over the counts (small integers that only grow):
  the value at a rank is one descent of the tree;
- the weight percentile from a sorted list of the customers' mean weights (an order-statistics
  list: a changed mean is one removal and one insertion);
- who newly meets the thresholds without reading every customer. A customer the chunk did not
  touch has the counts it had at the merchant's last evaluation; if it meets the thresholds
  now and did not then, its count lies between the new count threshold and a higher last one,
  or its mean weight between the last weight threshold and a higher new one. The undetected
  customers are indexed by count (buckets) and by mean weight (sorted), so each of those two
  ranges is read directly, as the PostgreSQL engine reads its two index ranges.

Every chunk that touches a merchant past the minimum is an evaluation point of it; a chunk
that does not touch it leaves its state, so it has no first point there (the same argument as
the other engines). Pure: no I/O, no engine; ``percentiles`` is the arithmetic, to the bit.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter

from txnpipe.core.rules.percentiles import (
    EPS,
    at_most,
    interpolate,
    least_count_at_least,
    percentile_ranks,
)

PairDelta = tuple[int, str, int, int, float]
"""(chunk, customer, records, weighted records, weight sum): one chunk's records of a pair."""


class CountTree:
    """How many customers have each count, with the count at any rank in O(log max count)."""

    def __init__(self) -> None:
        self._size = 64
        self._tree = [0] * (self._size + 1)
        self.total = 0

    def add(self, count: int, by: int) -> None:
        while count > self._size:
            self._grow()
        self.total += by
        i = count
        while i <= self._size:
            self._tree[i] += by
            i += i & -i

    def at_rank(self, rank: int) -> int:
        """The count of 0-based ``rank`` among all customers' counts in ascending order."""
        position, left = 0, rank + 1
        step = self._size
        while step:
            probe = position + step
            if probe <= self._size and self._tree[probe] < left:
                position = probe
                left -= self._tree[probe]
            step >>= 1
        return position + 1

    def _grow(self) -> None:
        counts = [0] * (self._size + 1)  # the frequency of each count, read back from the tree
        for i in range(1, self._size + 1):
            counts[i] = self._range(i)
        self._size *= 2
        self._tree = [0] * (self._size + 1)
        for i, c in enumerate(counts):
            if c:
                j = i
                while j <= self._size:
                    self._tree[j] += c
                    j += j & -j

    def _range(self, i: int) -> int:
        return self._prefix(i) - self._prefix(i - 1)

    def _prefix(self, i: int) -> int:
        s = 0
        while i > 0:
            s += self._tree[i]
            i -= i & -i
        return s


def _w_key(item: tuple[float, str]) -> float:
    return item[0]


class MerchantWalk:
    """One merchant's PatId1 state after each chunk applied so far, and its first points."""

    def __init__(self, minimum: int, count_p: float, weight_p: float) -> None:
        self._minimum, self._count_p, self._weight_p = minimum, count_p, weight_p
        self.transactions = 0  # N(m)
        self._n: dict[str, int] = {}
        self._wc: dict[str, int] = {}
        self._ws: dict[str, float] = {}
        self._w: dict[str, float] = {}  # mean weight of the customers that have one
        self._counts = CountTree()
        self._weights: list[float] = []  # every mean weight, ascending
        self._open_by_w: list[tuple[float, str]] = []  # undetected, weighted, by mean weight
        self._open_by_n: dict[int, set[str]] = {}  # the same customers by count
        self._detected: set[str] = set()
        self._last: tuple[int, float | None] | None = None  # (min count, Tw) at last evaluation

    def apply(self, deltas: Iterable[tuple[str, int, int, float]]) -> list[str]:
        """Apply one chunk's (customer, records, weighted records, weight sum) of this
        merchant, evaluate, and return the customers whose first point this chunk is."""
        touched = [self._apply_one(*delta) for delta in deltas]
        if self.transactions <= self._minimum:
            return []
        return self._evaluate(touched)

    def _apply_one(self, customer: str, dn: int, dwc: int, dws: float) -> str:
        self.transactions += dn
        old_n = self._n.get(customer)
        new_n = (old_n or 0) + dn
        self._n[customer] = new_n
        if old_n is not None:
            self._counts.add(old_n, -1)
        self._counts.add(new_n, 1)
        if dwc:
            old_w = self._w.get(customer)
            wc = self._wc[customer] = self._wc.get(customer, 0) + dwc
            ws = self._ws[customer] = self._ws.get(customer, 0.0) + dws
            new_w = self._w[customer] = ws / wc
            if old_w is not None:
                del self._weights[bisect_left(self._weights, old_w)]
            insort(self._weights, new_w)
            if customer not in self._detected:
                if old_w is not None:
                    self._close(customer, old_n or 0, old_w)
                self._open(customer, new_n, new_w)
        elif customer in self._w and customer not in self._detected:
            self._open_by_n[old_n or 0].discard(customer)  # its weight stays, its count moves
            self._open_by_n.setdefault(new_n, set()).add(customer)
        return customer

    def _open(self, customer: str, n: int, w: float) -> None:
        insort(self._open_by_w, (w, customer))
        self._open_by_n.setdefault(n, set()).add(customer)

    def _close(self, customer: str, n: int, w: float) -> None:
        del self._open_by_w[bisect_left(self._open_by_w, (w, customer))]
        self._open_by_n[n].discard(customer)

    def _thresholds(self) -> tuple[int, float | None]:
        lo, hi, fraction = percentile_ranks(self._count_p, self._counts.total)
        tn = interpolate(float(self._counts.at_rank(lo)), float(self._counts.at_rank(hi)),
                         fraction)  # fmt: skip
        if not self._weights:
            return least_count_at_least(tn), None
        lo, hi, fraction = percentile_ranks(self._weight_p, len(self._weights))
        return least_count_at_least(tn), interpolate(self._weights[lo], self._weights[hi],
                                                     fraction)  # fmt: skip

    def _evaluate(self, touched: Sequence[str]) -> list[str]:
        min_n, tw = self._thresholds()
        last, self._last = self._last, (min_n, tw)
        if tw is None:
            return []
        meets = {c for c in touched if c in self._w and c not in self._detected
                 and self._n[c] >= min_n and at_most(self._w[c], tw)}  # fmt: skip
        stop = bisect_right(self._open_by_w, tw + EPS, key=_w_key)
        if last is None or last[1] is None:  # no last thresholds: every customer at them
            meets.update(c for w, c in self._open_by_w[:stop] if self._n[c] >= min_n)
        else:
            last_n, last_tw = last
            for n in range(min_n, last_n):  # the count threshold fell
                meets.update(c for c in self._open_by_n.get(n, ()) if at_most(self._w[c], tw))
            start = bisect_right(self._open_by_w, last_tw + EPS, key=_w_key)
            meets.update(c for _, c in self._open_by_w[start:stop] if self._n[c] >= min_n)
        for customer in meets:
            self._close(customer, self._n[customer], self._w[customer])
            self._detected.add(customer)
        return sorted(meets)


def merchant_first_points(deltas: Iterable[PairDelta], minimum: int, count_p: float,
                          weight_p: float) -> Iterator[tuple[int, str]]:  # fmt: skip
    """(chunk, customer) at each customer's first PatId1 point, for one merchant's deltas in
    ascending chunk order (any order within a chunk)."""
    walk = MerchantWalk(minimum, count_p, weight_p)
    chunk: int | None = None
    pending: list[tuple[str, int, int, float]] = []
    for k, customer, dn, dwc, dws in deltas:
        if k != chunk:
            if chunk is not None:
                yield from ((chunk, c) for c in walk.apply(pending))
            if chunk is not None and k < chunk:
                raise ValueError(f"deltas out of chunk order: {k} after {chunk}")
            chunk, pending = k, []
        pending.append((customer, dn, dwc, dws))
    if chunk is not None:
        yield from ((chunk, c) for c in walk.apply(pending))


MerchantDelta = tuple[str, int, str, int, int, float]
"""(merchant, chunk, customer, records, weighted records, weight sum)."""


def first_points(rows: Iterable[MerchantDelta], minimum: int, count_p: float,
                 weight_p: float) -> Iterator[tuple[int, str, str]]:  # fmt: skip
    """(chunk, merchant, customer) at each PatId1 key's first point, for rows grouped by
    merchant and in chunk order within it: one merchant's walk in memory at a time."""
    seen: set[str] = set()
    for merchant, group in groupby(rows, key=itemgetter(0)):
        if merchant in seen:
            raise ValueError(f"rows of merchant {merchant!r} are not grouped together")
        seen.add(merchant)
        deltas = (row[1:] for row in group)
        for chunk, customer in merchant_first_points(deltas, minimum, count_p, weight_p):
            yield chunk, merchant, customer
