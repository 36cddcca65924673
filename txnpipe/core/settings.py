"""Settings of SPEC section 6: defaults, ``--set NAME=VALUE`` and ``TXNPIPE_<NAME>``.

Settings are validated once at start so that a typo fails the run before any chunk is
written, rather than half-way through a stream.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from txnpipe.core.errors import TxnpipeError

ENV_PREFIX = "TXNPIPE_"
MAX_INTEGER = 2**31 - 1
MAX_CHUNK_ROWS = 1_000_000  # a chunk is read, parsed and applied in memory at once
MAX_INTERVAL = 86_400.0  # seconds


@dataclass(frozen=True)
class Settings:
    chunk_rows: int = 1000
    chunk_interval_seconds: float = 7.0
    detection_batch_rows: int = 100
    upgrade_min_merchant_txns: int = 50000
    upgrade_count_percentile: float = 0.99
    upgrade_weight_percentile: float = 0.20
    child_min_txns: int = 80
    child_max_avg_value: float = 20.0
    dei_min_female_customers: int = 1000
    dei_max_female_male_ratio: float = 0.10

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, values: Mapping[str, str]) -> Settings:
        """Apply textual overrides (from ``--set`` or the environment), with parse errors named."""
        types = {f.name: f.type for f in dataclasses.fields(self)}
        parsed: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in types:
                raise TxnpipeError(
                    f"unknown setting {name!r}; known settings: {', '.join(self.names())}"
                )
            parsed[name] = _parse(name, raw, int if types[name] in ("int", int) else float)
        return dataclasses.replace(self, **parsed)

    @classmethod
    def from_sources(
        cls, environ: Mapping[str, str] | None = None, assignments: Iterable[str] = ()
    ) -> Settings:
        """Defaults, then ``TXNPIPE_*`` environment variables, then ``--set`` pairs (last wins)."""
        values: dict[str, str] = {}
        for name in cls.names():
            key = ENV_PREFIX + name.upper()
            if environ is not None and key in environ:
                values[name] = environ[key]
        for item in assignments:
            name, sep, raw = item.partition("=")
            if not sep or not name.strip():
                raise TxnpipeError(f"--set expects NAME=VALUE, got {item!r}")
            values[name.strip()] = raw.strip()
        return cls().replace(values)

    def as_dict(self) -> dict[str, int | float]:
        return dataclasses.asdict(self)


def _parse(name: str, raw: str, kind: type) -> int | float:
    text = raw.strip()
    try:
        if kind is int:
            value: float = float(text)
            if not value.is_integer():
                raise ValueError
            return int(value)
        value = float(text)
    except (ValueError, OverflowError):
        kind_name = "an integer" if kind is int else "a number"
        raise TxnpipeError(f"setting {name} must be {kind_name}, got {raw!r}") from None
    return value


def _validate(s: Settings) -> None:
    def need(ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise TxnpipeError(f"setting {name} must be {rule}, got {getattr(s, name)!r}")

    for name in s.names():
        value = getattr(s, name)
        need(isinstance(value, (int, float)) and math.isfinite(value), name, "a finite number")
    for name in s.names():  # PostgreSQL's integer, and a cadence a stream can keep
        if isinstance(getattr(s, name), int):
            need(getattr(s, name) <= MAX_INTEGER, name, f"at most {MAX_INTEGER:,}")
    need(1 <= s.chunk_rows <= MAX_CHUNK_ROWS, "chunk_rows", f"between 1 and {MAX_CHUNK_ROWS:,}")
    need(0 <= s.chunk_interval_seconds <= MAX_INTERVAL, "chunk_interval_seconds",
         f"between 0 and {MAX_INTERVAL:,} (a day)")  # fmt: skip
    need(s.detection_batch_rows >= 1, "detection_batch_rows", ">= 1")
    need(s.upgrade_min_merchant_txns >= 0, "upgrade_min_merchant_txns", ">= 0")
    need(0 <= s.upgrade_count_percentile <= 1, "upgrade_count_percentile", "between 0 and 1")
    need(0 <= s.upgrade_weight_percentile <= 1, "upgrade_weight_percentile", "between 0 and 1")
    need(s.child_min_txns >= 0, "child_min_txns", ">= 0")
    need(s.dei_min_female_customers >= 0, "dei_min_female_customers", ">= 0")
    need(s.dei_max_female_male_ratio >= 0, "dei_max_female_male_ratio", ">= 0")
