"""PatId1 by walking one merchant's chunks in stream order: O(deltas · log customers).

PatId1 is a per-merchant question, so a batch engine partitions by merchant and hands each
merchant's per-chunk pair deltas, in chunk order, to a ``MerchantWalk``. The walk keeps the
merchant's state as the streaming detector does after each chunk, and emits each customer at
its first point, never a pair state per point:

- the count percentile from a histogram of the counts (small integers that only grow) read
  through a moving rank cursor (``order_statistics.CountHistogram``);
- the weight percentile from the customers' mean weights in sorted buckets (a changed mean is
  one removal and one insertion, ``order_statistics.SortedBuckets``);
- who newly meets the thresholds without reading every customer. A customer the chunk did not
  touch has the counts it had at the merchant's last evaluation; if it meets the thresholds
  now and did not then, its count lies between the new count threshold and a higher last one,
  or its mean weight between the last weight threshold and a higher new one. The customers
  that have a mean weight are indexed by count (buckets) and by mean weight (the sorted
  buckets the percentile is read from), so each of those two ranges is read directly, as the
  PostgreSQL engine reads its two index ranges; already detected ones are skipped.

Every chunk that touches a merchant past the minimum is an evaluation point of it; a chunk
that does not touch it leaves its state, so it has no first point there (the same argument as
the other engines). Pure: no I/O, no engine; ``percentiles`` is the arithmetic, to the bit.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from txnpipe.core.rules.order_statistics import CountHistogram, SortedBuckets
from txnpipe.core.rules.percentiles import (
    EPS,
    at_most,
    interpolate,
    least_count_at_least,
    percentile_ranks,
)

PairDelta = tuple[int, str, int, int, float]
"""(chunk, customer, records, weighted records, weight sum): one chunk's records of a pair."""


def _w_key(item: tuple[float, str]) -> float:
    return item[0]


class MerchantWalk:
    """One merchant's PatId1 state after each chunk applied so far, and its first points."""

    def __init__(self, minimum: int, count_p: float, weight_p: float) -> None:
        self._minimum, self._count_p, self._weight_p = minimum, count_p, weight_p
        self.transactions = 0  # N(m)
        self._n: dict[str, int] = {}
        self._weighed: dict[str, tuple[int, float]] = {}  # weighted records, weight sum
        self._w: dict[str, float] = {}  # mean weight of the customers that have one
        self._counts = CountHistogram()
        # The customers that have a mean weight, by it and by count. Detected ones stay in
        # (the weight percentile counts them); they are few, and skipped when searched.
        self._by_w: SortedBuckets[tuple[float, str]] = SortedBuckets(key=_w_key)
        self._by_n: dict[int, set[str]] = {}
        self._detected: set[str] = set()
        self._last: tuple[int, float | None] | None = None  # (min count, Tw) at last evaluation

    def resume(self, transactions: int, pairs: Iterable[tuple[str, int, int, float]],
               detected: Iterable[str], last: tuple[int, float] | None) -> None:
        """Start from a stored state instead of nothing: N(m), each customer's (customer,
        records, weighted records, weight sum), the customers already emitted, and the
        thresholds of the merchant's last evaluation (None: unknown, so the first evaluation
        reads every customer at the thresholds). A streaming batch run (the Glue job,
        ``batch.upgrade_state``) resumes each merchant from the state the run before it
        kept."""
        for customer, n, wc, ws in pairs:
            self._apply_one(customer, n, wc, ws)
        self.transactions = transactions
        self._detected = set(detected)
        self._last = last

    @property
    def last(self) -> tuple[int, float | None] | None:
        """(min count, Tw) of the last evaluation, as the next one reads them."""
        return self._last

    def pairs(self) -> Iterator[tuple[str, int, int, float, bool]]:
        """Each customer's (customer, records, weighted records, weight sum, emitted): what
        ``resume`` starts from, kept by a batch run for the next one."""
        for customer, n in self._n.items():
            wc, ws = self._weighed.get(customer, (0, 0.0))
            yield customer, n, wc, ws, customer in self._detected

    def apply(self, deltas: Iterable[tuple[str, int, int, float]]) -> list[str]:
        """Apply one chunk's (customer, records, weighted records, weight sum) of this
        merchant, evaluate, and return the customers whose first point this chunk is."""
        touched = [self._apply_one(*delta) for delta in deltas]
        if self.transactions <= self._minimum:
            return []
        return self._evaluate(touched)

    def _apply_one(self, customer: str, dn: int, dwc: int, dws: float) -> str:
        self.transactions += dn
        old_n = self._n.get(customer, 0)
        new_n = self._n[customer] = old_n + dn
        if old_n:
            self._counts.add(old_n, -1)
        self._counts.add(new_n, 1)
        old_w = self._w.get(customer)
        if old_w is not None:
            self._by_n[old_n].discard(customer)
        if dwc:
            wc, ws = self._weighed.get(customer, (0, 0.0))
            wc, ws = wc + dwc, ws + dws
            self._weighed[customer] = (wc, ws)
            new_w = self._w[customer] = ws / wc
            if old_w is not None:
                self._by_w.remove((old_w, customer))
            self._by_w.add((new_w, customer))
        if dwc or old_w is not None:
            self._by_n.setdefault(new_n, set()).add(customer)
        return customer

    def _thresholds(self) -> tuple[int, float | None]:
        lo, hi, fraction = percentile_ranks(self._count_p, self._counts.total)
        tn = interpolate(float(self._counts.at_rank(lo)), float(self._counts.at_rank(hi)),
                         fraction)  # fmt: skip
        if not self._by_w:
            return least_count_at_least(tn), None
        lo, hi, fraction = percentile_ranks(self._weight_p, len(self._by_w))
        tw = interpolate(self._by_w.at(lo)[0], self._by_w.at(hi)[0], fraction)
        return least_count_at_least(tn), tw

    def _evaluate(self, touched: Sequence[str]) -> list[str]:
        min_n, tw = self._thresholds()
        last, self._last = self._last, (min_n, tw)
        if tw is None:
            return []
        n, w = self._n, self._w
        meets = {c for c in touched if c in w and n[c] >= min_n and at_most(w[c], tw)}
        # at_most(w, t) is w <= t + EPS: the ranges below are bounded by the same sums
        if last is None or last[1] is None:  # no last thresholds: every customer at them
            newly = self._by_w.above(None, tw + EPS)
        else:
            last_n, last_tw = last
            for count in range(min_n, last_n):  # the count threshold fell
                meets.update(c for c in self._by_n.get(count, ()) if at_most(w[c], tw))
            newly = self._by_w.above(last_tw + EPS, tw + EPS)
        meets.update(c for _, c in newly if n[c] >= min_n)
        meets -= self._detected
        self._detected |= meets
        return sorted(meets)


def merchant_first_points(deltas: Iterable[PairDelta], minimum: int, count_p: float,
                          weight_p: float) -> Iterator[tuple[int, str]]:  # fmt: skip
    """(chunk, customer) at each customer's first PatId1 point, for one merchant's deltas in
    ascending chunk order (any order within a chunk)."""
    return walk_chunks(MerchantWalk(minimum, count_p, weight_p), deltas)


def walk_chunks(walk: MerchantWalk, deltas: Iterable[PairDelta]) -> Iterator[tuple[int, str]]:
    """``walk`` through the deltas, chunk by chunk: (chunk, customer) at each first point."""
    chunk: int | None = None
    pending: list[tuple[str, int, int, float]] = []
    for k, customer, dn, dwc, dws in deltas:
        if k != chunk:
            if chunk is not None and k < chunk:
                raise ValueError(f"deltas out of chunk order: {k} after {chunk}")
            if chunk is not None:
                yield from ((chunk, c) for c in walk.apply(pending))
            chunk, pending = k, []
        pending.append((customer, dn, dwc, dws))
    if chunk is not None:
        yield from ((chunk, c) for c in walk.apply(pending))

