"""Customer-importance weights (SPEC 2.2): keys, the mean of duplicate keys, skipped rows.

Seed weights are keyed by (customer, transaction type); BankSim weights also by merchant.
Both become (customer, merchant, kind) keys, with merchant ``""`` for the seed layout, so
a single join finds a transaction's weight whatever the layout.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from txnpipe.core.csvscan import iter_records, split_fields
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.layouts import MAX_VALUE, clean, importance_layout, parse_number

WeightKey = tuple[str, str, str]


def keyed_by_merchant(layout: str) -> bool:
    """Whether an importance file of ``layout`` keys its weights by merchant too."""
    return layout == "banksim"


@dataclass(frozen=True)
class Weights:
    layout: str
    by_key: dict[WeightKey, float]
    rows: int
    skipped: int

    @property
    def keyed_by_merchant(self) -> bool:
        return keyed_by_merchant(self.layout)

    def key_for(self, customer: str, merchant: str, kind: str) -> WeightKey:
        return (customer, merchant if self.keyed_by_merchant else "", kind)


@dataclass
class WeightRows:
    """The importance file's usable rows, streamed; ``rows``/``skipped`` count as they go."""

    layout: str
    records: Iterator[bytes]
    width: int
    columns: tuple[int, int | None, int, int]  # customer, merchant, kind, value
    rows: int = 0
    skipped: int = 0

    def __iter__(self) -> Iterator[tuple[str, str, str, float]]:
        customer_at, merchant_at, kind_at, value_at = self.columns
        for raw in self.records:
            self.rows += 1
            try:
                if b'"' in raw:
                    fields = [f.decode("utf-8") for f in split_fields(raw)]
                else:  # a record without quotes is its line: decoded once, split on commas
                    fields = raw.decode("utf-8").removesuffix("\n").split(",")
            except UnicodeDecodeError:
                self.skipped += 1
                continue
            if len(fields) != self.width:
                self.skipped += 1
                continue
            customer = clean(fields[customer_at])
            weight = parse_number(clean(fields[value_at]))
            merchant = clean(fields[merchant_at]) if merchant_at is not None else ""
            kind = clean(fields[kind_at])
            # A key holding NUL cannot be stored, and can match no transaction (SPEC 2.2
            # rejects those): skipped and counted like the rows SPEC 2.2 names.
            if (not customer or weight is None or abs(weight) > MAX_VALUE
                    or "\x00" in customer + merchant + kind):  # fmt: skip
                self.skipped += 1
                continue
            yield customer, merchant, kind, weight


def weight_rows(data: bytes) -> WeightRows:
    records = iter_records(data)
    header = next(records, None)
    if header is None:
        raise TxnpipeError("importance file is empty")
    layout = importance_layout(header)
    columns = (layout.customer, layout.merchant, layout.kind, layout.value)
    return WeightRows(layout.name, records, layout.width, columns)


def parse_weights(data: bytes) -> Weights:
    """All weights in memory, each key's the mean of its rows (for the batch engines)."""
    rows = weight_rows(data)
    sums: dict[WeightKey, list[float]] = {}
    for customer, merchant, kind, weight in rows:
        acc = sums.setdefault((customer, merchant, kind), [0.0, 0.0])
        acc[0] += weight
        acc[1] += 1.0
    by_key = {key: total / count for key, (total, count) in sums.items()}
    return Weights(layout=rows.layout, by_key=by_key, rows=rows.rows, skipped=rows.skipped)
