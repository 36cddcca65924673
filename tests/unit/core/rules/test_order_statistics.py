"""The walk's order statistics against sorted lists, through random adds and removes."""
from __future__ import annotations

import random

import pytest

from txnpipe.core.rules.order_statistics import CountHistogram, SortedBuckets


@pytest.mark.parametrize("seed", range(5))
def test_count_histogram_ranks_follow_counts_that_grow(seed: int) -> None:
    rng = random.Random(seed)
    counts: dict[int, int] = {}
    histogram = CountHistogram()
    for _ in range(2000):
        c = rng.randrange(300)
        old = counts.get(c)
        new = (old or 0) + rng.randint(1, 40)
        if old is not None:
            histogram.add(old, -1)
        histogram.add(new, 1)
        counts[c] = new
        ordered = sorted(counts.values())
        for rank in {0, len(ordered) - 1, rng.randrange(len(ordered)),
                     int(0.99 * (len(ordered) - 1))}:  # fmt: skip
            assert histogram.at_rank(rank) == ordered[rank]
    assert histogram.total == len(counts)
    with pytest.raises(IndexError):
        histogram.at_rank(len(counts))


@pytest.mark.parametrize("seed", range(5))
def test_sorted_buckets_equal_a_sorted_list(seed: int) -> None:
    rng = random.Random(seed)
    buckets: SortedBuckets[tuple[float, str]] = SortedBuckets(key=lambda t: t[0], load=4)
    reference: list[tuple[float, str]] = []
    for _ in range(3000):
        if reference and rng.random() < 0.45:
            item = rng.choice(reference)
            reference.remove(item)
            buckets.remove(item)
        else:
            item = (rng.choice((0.1, 0.2, 0.25, 0.5, rng.random())), f"c{rng.randrange(50)}")
            reference.append(item)
            buckets.add(item)
        reference.sort()
        assert len(buckets) == len(reference)
        if reference:
            rank = rng.randrange(len(reference))
            assert buckets.at(rank) == reference[rank]
        low, high = sorted((rng.random(), rng.random()))
        assert buckets.above(low, high) == [t for t in reference if low < t[0] <= high]
        assert buckets.above(None, high) == [t for t in reference if t[0] <= high]
    with pytest.raises(KeyError):
        buckets.remove((2.0, "absent"))
