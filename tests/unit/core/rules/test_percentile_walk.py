"""The merchant walk against PatId1 evaluated from scratch after every chunk (SPEC 4.1-4.2)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from txnpipe.core.rules.percentile_walk import (
    MerchantWalk,
    PairDelta,
    merchant_first_points,
    walk_chunks,
)
from txnpipe.core.rules.percentiles import at_most, percentile_cont


def brute_force(deltas: list[PairDelta], minimum: int, count_p: float,
                weight_p: float) -> list[tuple[int, str]]:  # fmt: skip
    """Every customer's state recomputed at every chunk, thresholds from sorted lists."""
    n: dict[str, int] = {}
    wc: dict[str, int] = {}
    ws: dict[str, float] = {}
    found: dict[str, int] = {}
    chunks = sorted({d[0] for d in deltas})
    for k in chunks:
        for _, c, dn, dwc, dws in (d for d in deltas if d[0] == k):
            n[c] = n.get(c, 0) + dn
            wc[c] = wc.get(c, 0) + dwc
            ws[c] = ws.get(c, 0.0) + dws
        if sum(n.values()) <= minimum:
            continue
        w = {c: ws[c] / wc[c] for c in n if wc[c]}
        tn = percentile_cont([float(v) for v in n.values()], count_p)
        tw = percentile_cont(list(w.values()), weight_p)
        assert tn is not None
        for c in sorted(n):
            if c not in found and tw is not None and c in w and n[c] >= tn - 1e-9 \
                    and at_most(w[c], tw):
                found[c] = k
    return sorted((k, c) for c, k in found.items())


def walked(deltas: list[PairDelta], minimum: int, count_p: float,
           weight_p: float) -> list[tuple[int, str]]:  # fmt: skip
    return sorted(merchant_first_points(deltas, minimum, count_p, weight_p))


def random_deltas(rng: random.Random, chunks: int, customers: int) -> list[PairDelta]:
    out: list[PairDelta] = []
    for k in range(chunks):
        for c in rng.sample(range(customers), rng.randint(0, customers)):
            dn = rng.randint(1, 4)
            dwc = rng.randint(0, dn) if rng.random() < 0.8 else 0
            # weights from a small set, so mean weights tie and sit on the thresholds
            dws = sum(rng.choice((0.1, 0.2, 0.3, 0.5)) for _ in range(dwc))
            out.append((k, f"c{c:03d}", dn, dwc, dws))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_equals_brute_force_on_random_merchants(seed: int) -> None:
    rng = random.Random(seed)
    deltas = random_deltas(rng, rng.randint(1, 30), rng.randint(1, 60))
    minimum = rng.choice((0, 5, 40, 200))
    count_p, weight_p = rng.choice((0.0, 0.5, 0.9, 0.99, 1.0)), rng.choice((0.0, 0.2, 0.5, 1.0))
    expected = brute_force(deltas, minimum, count_p, weight_p)
    assert walked(deltas, minimum, count_p, weight_p) == expected


def test_random_merchants_detect_something() -> None:
    """The comparison above is not vacuous: most random merchants have first points."""
    hits = 0
    for seed in range(40):
        rng = random.Random(seed)
        deltas = random_deltas(rng, rng.randint(1, 30), rng.randint(1, 60))
        hits += bool(brute_force(deltas, 0, 0.5, 0.5))
    assert hits >= 30


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9), st.integers(1, 3),
                          st.integers(0, 3), st.sampled_from((0.1, 0.2, 0.3, 0.7))),
                max_size=80),
       st.sampled_from((0, 3, 10)), st.sampled_from((0.0, 0.5, 0.99)),
       st.sampled_from((0.0, 0.2, 1.0)))  # fmt: skip
def test_equals_brute_force_on_any_deltas(raw: list[tuple[int, int, int, int, float]],
                                          minimum: int, count_p: float,
                                          weight_p: float) -> None:  # fmt: skip
    deltas = sorted((k, f"c{c}", dn, min(dwc, dn), w * min(dwc, dn))
                    for k, c, dn, dwc, w in raw)  # fmt: skip
    assert walked(deltas, minimum, count_p, weight_p) == brute_force(
        deltas, minimum, count_p, weight_p)


def test_a_weight_at_the_threshold_up_to_float_noise_is_detected() -> None:
    """w(A) = 0.1 + 0.2 is 0.30000000000000004; Tw(0.0) is min w = 0.3 of B."""
    deltas = [(0, "A", 1, 1, 0.1 + 0.2), (0, "B", 1, 1, 0.3), (0, "C", 2, 1, 0.5)]
    assert walked(deltas, 0, 0.0, 0.0) == [(0, "A"), (0, "B")]


def test_an_untouched_customer_is_found_when_the_count_threshold_falls() -> None:
    """At chunk 0 only A (n=3) meets Tn; at chunk 1 many newcomers with n=1 pull Tn down to
    the untouched B (n=2), which is then detected."""
    deltas = [(0, "A", 3, 1, 0.1), (0, "B", 2, 1, 0.1), (0, "C", 1, 1, 0.9)]
    deltas += [(1, f"n{i}", 1, 1, 0.9) for i in range(5)]
    assert walked(deltas, 0, 0.8, 1.0) == [(0, "A"), (1, "B")]


def test_an_untouched_customer_is_found_when_the_weight_threshold_rises() -> None:
    deltas = [(0, "A", 1, 1, 0.1), (0, "B", 1, 1, 0.5), (1, "C", 1, 1, 0.9), (1, "D", 1, 1, 0.9)]
    assert walked(deltas, 0, 0.0, 0.0) == [(0, "A")]
    assert walked(deltas, 0, 0.0, 0.5) == [(0, "A"), (1, "B")]  # Tw 0.5 at chunk 1


def test_no_evaluation_before_the_minimum_is_passed() -> None:
    deltas = [(0, "A", 3, 1, 0.1), (1, "B", 1, 0, 0.0)]
    assert walked(deltas, 3, 0.0, 1.0) == [(1, "A")]  # N = 3 at 0 is not greater than 3


def test_deltas_out_of_chunk_order_are_refused() -> None:
    with pytest.raises(ValueError, match="out of chunk order"):
        walked([(1, "A", 1, 1, 0.1), (0, "B", 1, 1, 0.1)], 0, 0.5, 0.5)


@pytest.mark.parametrize("seed", range(30))
def test_a_walk_resumed_from_stored_state_equals_one_that_never_stopped(seed: int) -> None:
    """A streaming batch run resumes a merchant's walk from the state the run before it kept
    (pairs, emitted customers, last thresholds known or not): the first points after it are
    the same as a walk that never stopped."""
    rng = random.Random(seed)
    deltas = random_deltas(rng, rng.randint(2, 30), rng.randint(1, 60))
    minimum = rng.choice((0, 5, 40))
    count_p, weight_p = rng.choice((0.5, 0.9, 0.99)), rng.choice((0.0, 0.2, 0.5))
    stop = rng.randint(0, deltas[-1][0])
    before = [d for d in deltas if d[0] <= stop]
    walk = MerchantWalk(minimum, count_p, weight_p)
    emitted = [c for _, c in walk_chunks(walk, before)]
    pairs: dict[str, tuple[int, int, float]] = {}
    for _, customer, dn, dwc, dws in before:
        n, wc, ws = pairs.get(customer, (0, 0, 0.0))
        pairs[customer] = (n + dn, wc + dwc, ws + dws)
    resumed = MerchantWalk(minimum, count_p, weight_p)
    last = walk.last if rng.random() < 0.5 and walk.last and walk.last[1] is not None else None
    resumed.resume(sum(d[2] for d in before), [(c, *p) for c, p in pairs.items()], emitted, last)
    after = [d for d in deltas if d[0] > stop]
    assert sorted(walk_chunks(resumed, after)) == sorted(walk_chunks(walk, after))
