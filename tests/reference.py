"""Independent brute-force reference ("oracle") for the txnpipe detection semantics.

Written straight from /work/shared/SPEC.md (sections 2.1, 2.2, 3, 4.1-4.3, 6); it deliberately
imports nothing from ``txnpipe``.  Standard library only.

Public API
----------
``reference_detections(transactions, importance, settings=None)``
    The detection FILES in order: a list of files, each a list of rows
    ``(patternId, ActionType, customerName, MerchantId)``.  Every file holds exactly
    ``detection_batch_rows`` rows except the last, which may be shorter; there are no empty files.
``reference_detections_by_point(transactions, importance, settings=None)``
    The detection rows grouped by evaluation point (one list per chunk, possibly empty).
``reference_rejects(transactions)``
    ``{0-based record index in the stream: short reason}``.
``reference_chunks(transactions, chunk_rows)``
    The chunk files' bytes (SPEC 3): header line + the records' raw bytes, byte for byte.
``reference_weights(importance)``
    ``(weights, skipped)``: the key -> mean weight mapping and the number of skipped rows.
``percentile_cont(values, p)``, ``clean_field(text)``, ``parse_number(text)``
    Small helpers, exposed for tests.

Decisions on points the spec leaves open (also listed in the report):

* Record boundaries: a record ends at an LF outside quotes; a CR directly before that LF (or a CR
  at the very end of the input) belongs to the line ending.  A lone CR elsewhere is data (cleaning
  strips it when it is at a field's edge).  An *empty line* is exactly ``\\n`` or ``\\r\\n`` (or a
  final lone ``\\r``) at a record start; a line with only spaces is a record (and is rejected for
  its field count).
* Quotes follow Python's ``csv`` module (excel dialect, non-strict): a ``"`` is special only as the
  first character of a field; inside a quoted field ``""`` is a quote; a closing quote followed
  by something other than ``,``/line end continues the field unquoted (``"ab"c`` -> ``abc``); a
  quote in the middle of an unquoted field is a literal character; an unterminated quoted field
  runs to the end of the input.
* BOM: a leading UTF-8 BOM is dropped; it is not part of the header line written into chunks.  Empty
  lines before the header are skipped and are not part of the header line.
* The last record keeps its bytes exactly; if the input does not end with a line break, neither does
  the last chunk.
* Cleaning uses ``str.strip()`` (Unicode white space); the single-quote pair is removed only when
  the field is at least 2 characters long and both starts and ends with ``'``.
* Header: names cleaned and lower-cased.  If all seed columns are present the seed layout wins,
  otherwise BankSim; duplicate names use their first occurrence.  The ValueError names the missing
  columns of both candidate layouts.
* Number syntax: ``[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?``; values that overflow to
  infinity (``1e999``) are non-finite; ``-0`` is accepted (not negative).
* Reject reasons are checked in order: field count, empty customer, empty merchant, value not a
  number / not finite, negative value, value over 10^15, a NUL in any field, a customer or merchant
  id over 1,000 bytes (UTF-8).
* Importance: layout chosen independently of the transactions layout (the key shape follows the
  importance layout); rows with the wrong field count, an empty customer, or a weight that is not a
  finite number or whose magnitude exceeds 10^15 are skipped; so is a row holding a NUL (SPEC is
  silent; such a key can match no accepted transaction, so only the count sees it).  Negative weights are kept.  A BankSim importance row with an empty
  Target is kept (it can never match: transactions with an empty merchant are rejected).
* Settings: unknown names raise ValueError; ``chunk_rows`` and ``detection_batch_rows`` must be
  integers >= 1.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_SETTINGS",
    "EPS",
    "PATTERNS",
    "clean_field",
    "parse_number",
    "percentile_cont",
    "reference_chunks",
    "reference_detections",
    "reference_detections_by_point",
    "reference_rejects",
    "reference_weights",
]

EPS = 1e-9

DEFAULT_SETTINGS: dict[str, float | int] = {
    "chunk_rows": 1000,
    "chunk_interval_seconds": 7,
    "detection_batch_rows": 100,
    "upgrade_min_merchant_txns": 50000,
    "upgrade_count_percentile": 0.99,
    "upgrade_weight_percentile": 0.20,
    "child_min_txns": 80,
    "child_max_avg_value": 20,
    "dei_min_female_customers": 1000,
    "dei_max_female_male_ratio": 0.10,
}

# pattern number -> (patternId, ActionType)
PATTERNS = {1: ("PatId1", "UPGRADE"), 2: ("PatId2", "CHILD"), 3: ("PatId3", "DEI-NEEDED")}

Row = tuple[str, str, str, str]

SEED_TXN = {
    "customer": "customerid",
    "merchant": "merchantid",
    "value": "transaction_value",
    "gender": "gender",
    "type": "transaction_type",
}
BANKSIM_TXN = {
    "customer": "customer",
    "merchant": "merchant",
    "value": "amount",
    "gender": "gender",
    "type": "category",
}
SEED_IMP = {"customer": "customerid", "type": "transaction_type", "weight": "weightage"}
BANKSIM_IMP = {"customer": "source", "merchant": "target", "weight": "weight", "type": "typetrans"}

_BOM = b"\xef\xbb\xbf"
_QUOTE, _COMMA, _CR, _LF = 0x22, 0x2C, 0x0D, 0x0A

# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def clean_field(text: str) -> str:
    """SPEC 2.2: strip white space, then one pair of surrounding single quotes, then white space."""
    s = text.strip()
    if len(s) >= 2 and s[0] == "'" and s[-1] == "'":
        s = s[1:-1]
    return s.strip()


def parse_number(text: str) -> float | None:
    """Strict decimal number parser; returns None when not a finite number."""
    if not _NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    if not math.isfinite(value):
        return None
    return value


def percentile_cont(values, p: float) -> float:
    """Continuous percentile with linear interpolation (PostgreSQL percentile_cont)."""
    v = sorted(values)
    if not v:
        raise ValueError("percentile_cont of no values")
    pos = p * (len(v) - 1)
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


def _ge(x, t) -> bool:
    """x >= t; exact between integers, otherwise with tolerance EPS."""
    if isinstance(x, int) and isinstance(t, int):
        return x >= t
    return x >= t - EPS


def _le(x, t) -> bool:
    if isinstance(x, int) and isinstance(t, int):
        return x <= t
    return x <= t + EPS


def _lt(x, t) -> bool:
    if isinstance(x, int) and isinstance(t, int):
        return x < t
    return x < t - EPS


def _gt(x, t) -> bool:
    if isinstance(x, int) and isinstance(t, int):
        return x > t
    return x > t + EPS


# --------------------------------------------------------------------------------------------------
# CSV record splitting (RFC 4180), on bytes so that raw record bytes are available for chunks
# --------------------------------------------------------------------------------------------------


@dataclass
class _Record:
    raw: bytes  # the record's bytes including its line ending (if any)
    fields: list[str]  # decoded, NOT yet cleaned


def _parse_record_slow(data: bytes, pos: int) -> tuple[list[bytes], int]:
    """Character state machine for a record that contains a quote. Returns (fields, end)."""
    n = len(data)
    fields: list[bytes] = []
    buf = bytearray()
    state = "start"  # start | field | quoted | quote_in_quoted
    i = pos
    while True:
        if i >= n:  # end of input ends the field and the record
            fields.append(bytes(buf))
            return fields, n
        c = data[i]
        if state == "start":
            if c == _QUOTE:
                state = "quoted"
                i += 1
            else:
                state = "field"  # re-examine c as part of an unquoted field
            continue
        if state == "field":
            if c == _COMMA:
                fields.append(bytes(buf))
                buf.clear()
                state = "start"
            elif c == _LF:
                fields.append(bytes(buf))
                return fields, i + 1
            elif c == _CR and (i + 1 == n or data[i + 1] == _LF):
                fields.append(bytes(buf))
                return fields, i + 2 if i + 1 < n else n
            else:
                buf.append(c)
            i += 1
            continue
        if state == "quoted":
            if c == _QUOTE:
                state = "quote_in_quoted"
            else:
                buf.append(c)
            i += 1
            continue
        # state == "quote_in_quoted": the previous char was a quote inside a quoted field
        if c == _QUOTE:
            buf.append(_QUOTE)
            state = "quoted"
        elif c == _COMMA:
            fields.append(bytes(buf))
            buf.clear()
            state = "start"
        elif c == _LF:
            fields.append(bytes(buf))
            return fields, i + 1
        elif c == _CR and (i + 1 == n or data[i + 1] == _LF):
            fields.append(bytes(buf))
            return fields, i + 2 if i + 1 < n else n
        else:
            buf.append(c)
            state = "field"
        i += 1


def _iter_records(data: bytes):
    """Yield _Record for every CSV record (header included), skipping empty lines."""
    data = data.removeprefix(_BOM)
    n = len(data)
    pos = 0
    while pos < n:
        # empty line: not a record
        if data[pos] == _LF:
            pos += 1
            continue
        if data[pos] == _CR and (pos + 1 == n or data[pos + 1] == _LF):
            pos += 2 if pos + 1 < n else 1
            continue
        nl = data.find(b"\n", pos)
        line_end = n if nl == -1 else nl
        if data.find(b'"', pos, line_end) == -1:
            # fast path: no quote on this line -> the record is exactly this line
            content = data[pos:line_end]
            if content.endswith(b"\r"):
                content = content[:-1]
            end = n if nl == -1 else nl + 1
            raw_fields = content.split(b",")
        else:
            raw_fields, end = _parse_record_slow(data, pos)
        try:
            fields = [f.decode("utf-8") for f in raw_fields]
        except UnicodeDecodeError as exc:
            raise ValueError(f"input is not valid UTF-8 at byte {pos}: {exc}") from None
        yield _Record(raw=data[pos:end], fields=fields)
        pos = end


def _read_table(data: bytes, what: str) -> tuple[_Record, list[_Record]]:
    it = _iter_records(data)
    header = next(it, None)
    if header is None:
        raise ValueError(f"{what}: empty input, no header")
    return header, list(it)


def _columns(header: _Record, layouts: list[tuple[str, dict[str, str]]], what: str):
    names = [clean_field(f).lower() for f in header.fields]
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    missing_msgs = []
    for layout_name, cols in layouts:
        missing = [c for c in cols.values() if c not in index]
        if not missing:
            return layout_name, {role: index[col] for role, col in cols.items()}
        missing_msgs.append(f"{layout_name} layout is missing {', '.join(missing)}")
    raise ValueError(f"{what}: unknown header: " + "; ".join(missing_msgs))


# --------------------------------------------------------------------------------------------------
# Public: chunks, rejects, weights
# --------------------------------------------------------------------------------------------------


def reference_chunks(transactions: bytes, chunk_rows: int) -> list[bytes]:
    """Chunk files per SPEC 3: header line (BOM dropped) + each record's raw bytes."""
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError("chunk_rows must be an integer >= 1")
    header, records = _read_table(transactions, "transactions")
    chunks = []
    for k in range(0, len(records), chunk_rows):
        chunks.append(header.raw + b"".join(r.raw for r in records[k : k + chunk_rows]))
    return chunks


@dataclass
class _Txn:
    customer: str
    merchant: str
    value: float
    gender: str
    type: str


def _parse_transactions(transactions: bytes) -> tuple[list[_Txn | None], dict[int, str]]:
    """Per record: the accepted transaction, or None when rejected (reason in the dict)."""
    header, records = _read_table(transactions, "transactions")
    _, col = _columns(header, [("seed", SEED_TXN), ("BankSim", BANKSIM_TXN)], "transactions")
    width = len(header.fields)
    out: list[_Txn | None] = []
    rejects: dict[int, str] = {}
    for idx, rec in enumerate(records):
        if len(rec.fields) != width:
            rejects[idx] = f"field count {len(rec.fields)} != {width}"
            out.append(None)
            continue
        f = [clean_field(x) for x in rec.fields]
        customer, merchant = f[col["customer"]], f[col["merchant"]]
        if customer == "":
            reason = "empty customer"
        elif merchant == "":
            reason = "empty merchant"
        else:
            value = parse_number(f[col["value"]])
            if value is None:
                reason = "value not a finite number"
            elif value < 0:
                reason = "negative value"
            elif value > 1e15:
                reason = "value greater than 10^15"
            elif any("\x00" in x for x in rec.fields):
                reason = "NUL character"
            elif max(len(customer.encode()), len(merchant.encode())) > 1000:
                reason = "id longer than 1,000 bytes"
            else:
                reason = None
        if reason is not None:
            rejects[idx] = reason
            out.append(None)
            continue
        out.append(_Txn(customer, merchant, value, f[col["gender"]].upper(), f[col["type"]]))
    return out, rejects


def reference_rejects(transactions: bytes) -> dict[int, str]:
    """0-based record index in the stream -> short reason, for every rejected record."""
    return _parse_transactions(transactions)[1]


def reference_weights(importance: bytes) -> tuple[dict[tuple[str, ...], float], int]:
    """(key -> mean weight, number of skipped rows). Key: (customer, type) for the seed layout,
    (customer, merchant, type) for the BankSim layout."""
    _, weights, skipped = _load_weights(importance)
    return weights, skipped


def _load_weights(importance: bytes) -> tuple[str, dict[tuple[str, ...], float], int]:
    header, records = _read_table(importance, "importance")
    layout, col = _columns(header, [("seed", SEED_IMP), ("BankSim", BANKSIM_IMP)], "importance")
    width = len(header.fields)
    sums: dict[tuple[str, ...], list[float]] = {}
    skipped = 0
    for rec in records:
        if len(rec.fields) != width:
            skipped += 1
            continue
        f = [clean_field(x) for x in rec.fields]
        customer = f[col["customer"]]
        weight = parse_number(f[col["weight"]])
        if customer == "" or weight is None or abs(weight) > 1e15 or any("\x00" in x for x in f):
            skipped += 1
            continue
        if layout == "seed":
            key = (customer, f[col["type"]])
        else:
            key = (customer, f[col["merchant"]], f[col["type"]])
        acc = sums.setdefault(key, [0.0, 0])
        acc[0] += weight
        acc[1] += 1
    return layout, {k: s / c for k, (s, c) in sums.items()}, skipped


# --------------------------------------------------------------------------------------------------
# Detections
# --------------------------------------------------------------------------------------------------


def _settings(settings: dict | None) -> dict[str, float | int]:
    s = dict(DEFAULT_SETTINGS)
    for name, value in (settings or {}).items():
        if name not in DEFAULT_SETTINGS:
            raise ValueError(f"unknown setting {name!r}")
        s[name] = value
    for name in ("chunk_rows", "detection_batch_rows"):
        v = s[name]
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {s[name]!r}")
        s[name] = v
    return s


@dataclass
class _Pair:
    n: int = 0
    value_sum: float = 0.0
    weight_sum: float = 0.0
    weight_count: int = 0

    @property
    def avg(self) -> float:
        return self.value_sum / self.n

    @property
    def w(self) -> float | None:
        return self.weight_sum / self.weight_count if self.weight_count else None


@dataclass
class _Merchant:
    total: int = 0  # N(m)
    pairs: dict[str, _Pair] = field(default_factory=dict)  # customer -> stats
    female: int = 0  # F(m)
    male: int = 0  # M(m)


def reference_detections_by_point(
    transactions: bytes, importance: bytes, settings: dict[str, float | int] | None = None
) -> list[list[Row]]:
    """Detection rows grouped by evaluation point (one list per chunk, in chunk order)."""
    s = _settings(settings)
    txns, _ = _parse_transactions(transactions)
    weight_layout, weights, _ = _load_weights(importance)

    chunk_rows = s["chunk_rows"]
    gender: dict[str, str] = {}  # customer -> gender of its first accepted record (upper-cased)
    merchants: dict[str, _Merchant] = {}
    emitted: set[tuple] = set()
    points: list[list[Row]] = []

    for start in range(0, len(txns), chunk_rows):
        # ---- apply the chunk (running statistics, maintained incrementally)
        for t in txns[start : start + chunk_rows]:
            if t is None:
                continue  # rejected: counts toward the chunk, takes no part in patterns
            if t.customer not in gender:
                gender[t.customer] = t.gender
            m = merchants.setdefault(t.merchant, _Merchant())
            m.total += 1
            pair = m.pairs.get(t.customer)
            if pair is None:
                pair = m.pairs[t.customer] = _Pair()
                g = gender[t.customer]
                if g == "F":
                    m.female += 1
                elif g == "M":
                    m.male += 1
            pair.n += 1
            pair.value_sum += t.value
            if weight_layout == "seed":
                key = (t.customer, t.type)
            else:
                key = (t.customer, t.merchant, t.type)
            wt = weights.get(key)
            if wt is not None:
                pair.weight_sum += wt
                pair.weight_count += 1

        # ---- evaluate every pattern from scratch over the statistics so far
        found: list[tuple[int, str, str]] = []  # (pattern, merchant, customer)

        # PatId1 UPGRADE
        for mid, m in merchants.items():
            if not _gt(m.total, s["upgrade_min_merchant_txns"]):
                continue
            tn = percentile_cont([p.n for p in m.pairs.values()], s["upgrade_count_percentile"])
            ws = [p.w for p in m.pairs.values() if p.weight_count]
            if not ws:
                continue
            tw = percentile_cont(ws, s["upgrade_weight_percentile"])
            for cid, p in m.pairs.items():
                if _ge(p.n, tn) and p.weight_count and _le(p.w, tw):
                    found.append((1, mid, cid))

        # PatId2 CHILD
        for mid, m in merchants.items():
            for cid, p in m.pairs.items():
                if _ge(p.n, s["child_min_txns"]) and _lt(p.avg, s["child_max_avg_value"]):
                    found.append((2, mid, cid))

        # PatId3 DEI-NEEDED
        for mid, m in merchants.items():
            if _ge(m.female, s["dei_min_female_customers"]) and _lt(
                m.female, s["dei_max_female_male_ratio"] * m.male
            ):
                found.append((3, mid, ""))

        rows: list[Row] = []
        for pat, mid, cid in sorted(found):
            key = (pat, mid) if pat == 3 else (pat, cid, mid)
            if key in emitted:
                continue
            emitted.add(key)
            pid, action = PATTERNS[pat]
            rows.append((pid, action, cid, mid))
        points.append(rows)
    return points


def reference_detections(
    transactions: bytes, importance: bytes, settings: dict[str, float | int] | None = None
) -> list[list[Row]]:
    """Detection files in order; each has exactly detection_batch_rows rows except the last."""
    s = _settings(settings)
    by_point = reference_detections_by_point(transactions, importance, s)
    flat = [row for point in by_point for row in point]
    size = s["detection_batch_rows"]
    return [flat[i : i + size] for i in range(0, len(flat), size)]
