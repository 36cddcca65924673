"""Input layouts (SPEC 2.1) and the cleaning and validation of records (SPEC 2.2).

The header decides the layout; both the seed and the BankSim files are read through the
same few column roles, so nothing downstream knows which layout a stream came from,
except that BankSim weights are keyed by merchant too.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from txnpipe.core.csvscan import BOM, split_fields
from txnpipe.core.errors import TxnpipeError

# SPEC 2.2: PostgreSQL cannot store NUL in text, and a b-tree key must fit a third of a
# page, so a record with a NUL or a longer customer or merchant id is rejected with a reason
# rather than failing the whole chunk. A value over 10^15 is no amount, and larger ones could
# overflow the running sums; importance weights are bounded the same way.
MAX_ID_BYTES = 1000
MAX_VALUE = 1e15


def clean(value: str) -> str:
    """Strip white space, one pair of surrounding single quotes, then white space again."""
    value = value.strip()
    if len(value) >= 2 and value[0] == "'" and value[-1] == "'":
        value = value[1:-1].strip()
    return value


def clean_column(values: Sequence[str]) -> list[str]:
    """``clean`` of each value, a whole column in one pass: a chunk is parsed a column at a
    time, and a function call per value cost as much as the cleaning itself."""
    stripped = [v.strip() for v in values]
    return [v[1:-1].strip() if len(v) >= 2 and v[0] == "'" and v[-1] == "'" else v
            for v in stripped]  # fmt: skip


def parse_number(text: str) -> float | None:
    """A finite decimal number, or None: no ``inf``, ``nan``, ``1_000`` or hex sneak in.

    ``float`` accepts the ASCII decimal forms (sign, digits, point, exponent), and also
    underscores, non-ASCII digits and the non-finite spellings, all refused here.
    """
    try:
        value = float(text)
    except ValueError:
        return None
    if "_" in text or not text.isascii() or not math.isfinite(value):
        return None
    return value


def parse_numbers(texts: Sequence[str]) -> list[float] | None:
    """``parse_number`` of each text when every one is a finite decimal number, else None
    (the caller then judges them one by one)."""
    joined = "".join(texts)
    if "_" in joined or not joined.isascii():
        return None
    try:
        values = [float(t) for t in texts]
    except ValueError:
        return None
    return values if all(map(math.isfinite, values)) else None


@dataclass(frozen=True)
class Layout:
    """Which header columns play which role, as 0-based indexes into a record."""

    name: str
    width: int
    customer: int
    value: int
    kind: int
    merchant: int | None = None
    gender: int | None = None


_TRANSACTION_LAYOUTS = {
    "seed": {
        "customer": "CustomerId",
        "merchant": "MerchantId",
        "value": "transaction_value",
        "gender": "gender",
        "kind": "transaction_type",
    },
    "banksim": {
        "customer": "customer",
        "merchant": "merchant",
        "value": "amount",
        "gender": "gender",
        "kind": "category",
    },
}
_IMPORTANCE_LAYOUTS = {
    "seed": {"customer": "CustomerId", "value": "weightage", "kind": "transaction_type"},
    "banksim": {"customer": "Source", "merchant": "Target", "value": "Weight", "kind": "typeTrans"},
}


_NOT_UTF8 = "is not CSV text: its header line is not valid UTF-8"


def check_header_line(raw_header: bytes) -> None:
    """Refuse a file that is not CSV text by its header line (SPEC 2.2): one holding a NUL
    (binary, or UTF-16), or one whose lines end in a bare CR (an old Mac tool's output, which
    would otherwise read as a single record). Later records are judged one by one."""
    if b"\x00" in raw_header:
        raise TxnpipeError("is binary, not CSV text: its header line holds a NUL byte")
    try:
        raw_header.decode("utf-8")
    except UnicodeDecodeError:
        raise TxnpipeError(_NOT_UTF8) from None
    if b"\r" in raw_header.removesuffix(b"\n").removesuffix(b"\r"):  # CRLF is one line end
        raise TxnpipeError(
            "has lines ending in a bare CR (classic Mac line ends): only LF and CRLF are "
            "allowed; convert it, for example with `tr '\\r' '\\n'`"
        )


def header_fields(raw_header: bytes, what: str = "input") -> list[str]:
    raw_header = raw_header.removeprefix(BOM)
    try:
        check_header_line(raw_header)
    except TxnpipeError as exc:
        raise TxnpipeError(f"{what} file {exc}") from None
    try:
        return [clean(f.decode("utf-8")) for f in split_fields(raw_header)]
    except UnicodeDecodeError:
        raise TxnpipeError(f"{what} file {_NOT_UTF8}") from None


def _detect(what: str, fields: list[str], layouts: dict[str, dict[str, str]]) -> Layout:
    position = {}
    for i, name in enumerate(fields):
        position.setdefault(name.lower(), i)
    problems = []
    for name, roles in layouts.items():
        missing = [col for col in roles.values() if col.lower() not in position]
        if not missing:
            index = {role: position[col.lower()] for role, col in roles.items()}
            return Layout(name=name, width=len(fields), **index)
        problems.append(f"{name} layout is missing {', '.join(missing)}")
    shown = ",".join(fields)[:80]
    raise TxnpipeError(f"{what} header {shown!r} matches no layout: {'; '.join(problems)}")


def transactions_layout(raw_header: bytes) -> Layout:
    return _detect("transactions", header_fields(raw_header, "transactions"), _TRANSACTION_LAYOUTS)


def importance_layout(raw_header: bytes) -> Layout:
    return _detect("importance", header_fields(raw_header, "importance"), _IMPORTANCE_LAYOUTS)


class Transaction(NamedTuple):
    """An accepted record. A named tuple, not a dataclass: one is built per record, and a
    tuple is built six times faster than a frozen dataclass."""

    record: int
    customer: str
    merchant: str
    value: float
    gender: str
    kind: str


@dataclass(frozen=True)
class Reject:
    record: int
    reason: str
    raw: bytes


def parse_transaction(record: int, raw: bytes, layout: Layout) -> Transaction | Reject:
    """One record to a Transaction, or a Reject whose reason says what to fix."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Reject(record, "not valid UTF-8", raw)
    if '"' in text:
        fields = [f.decode("utf-8") for f in split_fields(raw)]
    else:
        fields = text.removesuffix("\n").split(",")
    return _transaction(record, fields, text, raw, layout)


def parse_line(record: int, line: str, layout: Layout) -> Transaction | Reject:
    """A record already decoded and known to hold no ``"`` (a line without its LF)."""
    return _transaction(record, line.split(","), line, None, layout)


def parse_lines(first: int, lines: Sequence[str], layout: Layout) -> list[Transaction] | None:
    """Records already decoded and known to hold no ``"`` (lines without their LF), numbered
    from ``first``, when every one of them is accepted; None when any would be rejected.

    Each column is cleaned and checked in one pass: a chunk is nearly always clean, and one
    record at a time cost half as much again. Each check is the one ``_transaction`` makes,
    over the whole column; a chunk that fails any of them is parsed one record at a time
    instead, so that each reject gets its own reason. ``clean_column`` and ``parse_numbers``
    are ``clean`` and ``parse_number`` over a column (tests hold them equal).
    """
    if not lines:
        return []
    width = layout.width
    if any(line.count(",") != width - 1 for line in lines):
        return None
    # one flat list of every field, sliced by column: a list per record would be scanned
    # by the garbage collector over and over, and cost more than the parsing
    text = ",".join(lines)
    if "\x00" in text:
        return None
    fields = text.split(",")
    assert layout.merchant is not None and layout.gender is not None
    customers = clean_column(fields[layout.customer :: width])
    merchants = clean_column(fields[layout.merchant :: width])
    if not all(customers) or not all(merchants):
        return None
    if max(map(len, customers + merchants)) > MAX_ID_BYTES // 4:
        return None  # too_long's cheap test; its exact one is made record by record
    values = parse_numbers(clean_column(fields[layout.value :: width]))
    if values is None or min(values) < 0 or max(values) > MAX_VALUE:
        return None
    genders = [g if g in ("F", "M") else "" for g in
               (g.upper() for g in clean_column(fields[layout.gender :: width]))]  # fmt: skip
    kinds = clean_column(fields[layout.kind :: width])
    return list(map(Transaction, range(first, first + len(lines)), customers, merchants,
                    [v + 0.0 for v in values], genders, kinds))  # fmt: skip


def _transaction(
    record: int, fields: list[str], text: str, raw: bytes | None, layout: Layout
) -> Transaction | Reject:
    def reject(reason: str) -> Reject:
        return Reject(record, reason, raw if raw is not None else text.encode("utf-8"))

    if len(fields) != layout.width:
        return reject(f"expected {layout.width} fields, found {len(fields)}")
    if "\x00" in text:
        return reject("contains a NUL character")
    assert layout.merchant is not None and layout.gender is not None
    customer = clean(fields[layout.customer])
    if not customer:
        return reject("empty customer")
    merchant = clean(fields[layout.merchant])
    if not merchant:
        return reject("empty merchant")
    number = clean(fields[layout.value])
    value = parse_number(number)
    if value is None:
        return reject(f"value {number[:40]!r} is not a finite number")
    if value < 0:
        return reject(f"value {number[:40]!r} is negative")
    if value > MAX_VALUE:
        return reject(f"value {number[:40]!r} is greater than 10^15")
    if too_long(customer, merchant):
        return reject(f"customer or merchant id longer than {MAX_ID_BYTES} bytes")
    kind = clean(fields[layout.kind])
    gender = clean(fields[layout.gender]).upper()
    return Transaction(
        record, customer, merchant, value + 0.0, gender if gender in ("F", "M") else "", kind
    )


def too_long(*ids: str) -> bool:
    """A cheap length test first (a character is at most 4 bytes): this runs per record."""
    if max(map(len, ids)) <= MAX_ID_BYTES // 4:
        return False
    return any(len(i.encode()) > MAX_ID_BYTES for i in ids)
