"""Customer-importance weights (SPEC 2.2): keys, the mean of duplicate keys, skipped rows.

Seed weights are keyed by (customer, transaction type); BankSim weights also by merchant.
Both become (customer, merchant, kind) keys, with merchant ``""`` for the seed layout, so
a single join finds a transaction's weight whatever the layout.
"""
from __future__ import annotations

from dataclasses import dataclass

from txnpipe.csvscan import iter_records, split_fields
from txnpipe.errors import TxnpipeError
from txnpipe.layouts import clean, importance_layout, parse_number, too_long

WeightKey = tuple[str, str, str]


@dataclass(frozen=True)
class Weights:
    layout: str
    by_key: dict[WeightKey, float]
    rows: int
    skipped: int

    @property
    def keyed_by_merchant(self) -> bool:
        return self.layout == "banksim"

    def key_for(self, customer: str, merchant: str, kind: str) -> WeightKey:
        return (customer, merchant if self.keyed_by_merchant else "", kind)


def parse_weights(data: bytes) -> Weights:
    records = iter_records(data)
    header = next(records, None)
    if header is None:
        raise TxnpipeError("importance file is empty")
    layout = importance_layout(header)
    sums: dict[WeightKey, list[float]] = {}
    rows = skipped = 0
    for raw in records:
        rows += 1
        try:
            fields = [f.decode("utf-8") for f in split_fields(raw)]
        except UnicodeDecodeError:
            skipped += 1
            continue
        if len(fields) != layout.width:
            skipped += 1
            continue
        customer = clean(fields[layout.customer])
        weight = parse_number(clean(fields[layout.value]))
        if not customer or weight is None:
            skipped += 1
            continue
        merchant = clean(fields[layout.merchant]) if layout.merchant is not None else ""
        key = (customer, merchant, clean(fields[layout.kind]))
        if too_long(*key) or any("\x00" in part for part in key):
            skipped += 1
            continue
        acc = sums.get(key)
        if acc is None:
            sums[key] = [weight, 1.0]
        else:
            acc[0] += weight
            acc[1] += 1.0
    by_key = {key: total / count for key, (total, count) in sums.items()}
    return Weights(layout=layout.name, by_key=by_key, rows=rows, skipped=skipped)
