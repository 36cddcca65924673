"""What the report says about a run: patterns and their labels, counts per evaluation point,
the merchants and customers behind the detections, reject reasons and quantiles."""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from txnpipe.core.detections import RecordedDetection
from txnpipe.core.rules import CATALOGUE
from txnpipe.tools.report.folder import RunData

_QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")


def label(pattern: int) -> tuple[str, str]:
    """(``PatIdN``, action) as the catalogue names them; a pattern it lacks has no action."""
    if pattern in CATALOGUE.patterns:
        return CATALOGUE.label(pattern)
    return f"PatId{pattern}", ""


def title(pattern: int) -> str:
    """``PatId2 CHILD``."""
    return " ".join(label(pattern))


def is_merchant_rule(pattern: int) -> bool:
    """Whether ``pattern`` is detected per merchant (customer empty), as PatId3 is."""
    return pattern in CATALOGUE.patterns and CATALOGUE.rule(pattern).scope == "merchant"


def patterns_of(data: RunData) -> list[int]:
    """The catalogue's patterns, then any other pattern the detection files hold."""
    extra = sorted({d.pattern for d in data.detections} - set(CATALOGUE.patterns))
    return list(CATALOGUE.patterns) + extra


def reason_category(reason: str) -> str:
    """A reason without its value: ``value '-1' is negative`` -> ``value … is negative``."""
    return _QUOTED.sub("…", reason).strip()


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class MerchantLine:
    pattern: int
    merchant: str
    detections: int
    customers: int
    first_chunk: int | None
    last_chunk: int | None


def top_merchants(rows: Iterable[RecordedDetection], top: int) -> dict[int, list[MerchantLine]]:
    groups: dict[tuple[int, str], list[RecordedDetection]] = defaultdict(list)
    for d in rows:
        groups[(d.pattern, d.merchant)].append(d)
    result: dict[int, list[MerchantLine]] = {}
    for (pattern, merchant), ds in groups.items():
        points = [d.chunk for d in ds if d.chunk is not None]
        result.setdefault(pattern, []).append(
            MerchantLine(pattern, merchant, len(ds), len({d.customer for d in ds if d.customer}),
                         min(points) if points else None, max(points) if points else None)
        )  # fmt: skip
    for pattern, lines in result.items():
        lines.sort(key=lambda m: (-m.detections, m.merchant.encode()))
        result[pattern] = lines[:top]
    return result


@dataclass(frozen=True)
class CustomerLine:
    customer: str
    detections: int
    by_pattern: dict[int, int]
    merchants: int
    first_chunk: int | None


def top_customers(rows: Iterable[RecordedDetection], top: int) -> list[CustomerLine]:
    groups: dict[str, list[RecordedDetection]] = defaultdict(list)
    for d in rows:
        if d.customer:
            groups[d.customer].append(d)
    lines = []
    for customer, ds in groups.items():
        points = [d.chunk for d in ds if d.chunk is not None]
        lines.append(CustomerLine(customer, len(ds), dict(Counter(d.pattern for d in ds)),
                                  len({d.merchant for d in ds}),
                                  min(points) if points else None))  # fmt: skip
    lines.sort(key=lambda c: (-c.detections, -c.merchants, c.customer.encode()))
    return lines[:top]


def per_chunk_counts(data: RunData) -> tuple[list[int], dict[int, list[int]]]:
    """Chunk indices of run.json and, per pattern, new detections at each of them."""
    index = [c.chunk for c in data.chunks]
    position = {chunk: i for i, chunk in enumerate(index)}
    counts: dict[int, list[int]] = {p: [0] * len(index) for p in patterns_of(data)}
    for d in data.detections:
        if d.chunk is not None and d.chunk in position:
            counts[d.pattern][position[d.chunk]] += 1
    return index, counts
