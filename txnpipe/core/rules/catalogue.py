"""The rule catalogue: SPEC 4.2's patterns, each declared once.

Every engine (the PostgreSQL apply, DuckDB, Spark and the Glue job) reads its patterns
from a ``Catalogue``: a threshold rule's condition is rendered by the engine's dialect
(``expressions.render``), and PatId1's percentile rule names its settings here and the
engines that implement it. Adding a pattern is adding one declaration: ``CATALOGUE.with_rules``
(see the README, "How to add a pattern").
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from txnpipe.core.rules.aggregates import FEMALES, MALES, MEAN_VALUE, PAIR_TXNS
from txnpipe.core.rules.expressions import (
    Condition,
    Setting,
    all_of,
    at_least,
    below,
    settings_of,
    times,
)
from txnpipe.core.settings import Settings

Scope = Literal["pair", "merchant"]


@dataclass(frozen=True)
class ThresholdRule:
    """A condition over one pair's aggregates (emitted per customer and merchant) or one
    merchant's (emitted per merchant, customer empty)."""

    pattern: int
    action: str
    scope: Scope
    condition: Condition
    kind: str = "threshold"

    @property
    def name(self) -> str:
        return f"PatId{self.pattern}"

    @property
    def settings(self) -> tuple[Setting, ...]:
        return tuple(dict.fromkeys(settings_of(self.condition)))


@dataclass(frozen=True)
class PercentileRule:
    """PatId1: for a merchant past ``min_merchant_txns`` transactions, a customer whose count
    is at least the ``count_percentile`` of its customers' counts and whose mean weight is at
    most the ``weight_percentile`` of their mean weights. Each engine computes the two
    percentiles its own way (``implementations``), all exactly as ``percentiles`` defines."""

    pattern: int
    action: str
    min_merchant_txns: Setting
    count_percentile: Setting
    weight_percentile: Setting
    implementations: tuple[tuple[str, str], ...] = ()  # (engine, where and how)
    scope: Scope = "pair"
    kind: str = "percentile"

    @property
    def name(self) -> str:
        return f"PatId{self.pattern}"

    @property
    def settings(self) -> tuple[Setting, ...]:
        return (self.min_merchant_txns, self.count_percentile, self.weight_percentile)

    def values(self, settings: Settings) -> tuple[int, float, float]:
        """(min merchant transactions, count percentile, weight percentile)."""
        return (int(self.min_merchant_txns.value(settings)),
                float(self.count_percentile.value(settings)),
                float(self.weight_percentile.value(settings)))  # fmt: skip


Rule = ThresholdRule | PercentileRule


@dataclass(frozen=True)
class Catalogue:
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        ids = [r.pattern for r in self.rules]
        if len(set(ids)) != len(ids) or any(p < 1 or p > 32_767 for p in ids):
            raise ValueError(f"pattern ids must be distinct, from 1 to 32767: {ids}")
        if sum(isinstance(r, PercentileRule) for r in self.rules) > 1:
            raise ValueError("a catalogue holds at most one percentile rule")

    @property
    def pair_rules(self) -> tuple[ThresholdRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, ThresholdRule) and r.scope == "pair")

    @property
    def merchant_rules(self) -> tuple[ThresholdRule, ...]:
        return tuple(
            r for r in self.rules if isinstance(r, ThresholdRule) and r.scope == "merchant"
        )

    @property
    def percentile_rule(self) -> PercentileRule | None:
        return next((r for r in self.rules if isinstance(r, PercentileRule)), None)

    @property
    def patterns(self) -> tuple[int, ...]:
        return tuple(sorted(r.pattern for r in self.rules))

    def rule(self, pattern: int) -> Rule:
        for r in self.rules:
            if r.pattern == pattern:
                return r
        raise KeyError(f"no pattern {pattern} in the catalogue")

    def label(self, pattern: int) -> tuple[str, str]:
        """(``PatIdN``, action) as a detection row writes them."""
        rule = self.rule(pattern)
        return rule.name, rule.action

    def with_rules(self, *extra: Rule) -> Catalogue:
        return Catalogue(self.rules + tuple(extra))

    def settings(self) -> Iterable[Setting]:
        return dict.fromkeys(s for r in self.rules for s in r.settings)


UPGRADE = PercentileRule(
    pattern=1,
    action="UPGRADE",
    min_merchant_txns=Setting("upgrade_min_merchant_txns"),
    count_percentile=Setting("upgrade_count_percentile"),
    weight_percentile=Setting("upgrade_weight_percentile"),
    implementations=(
        ("inline", "txnpipe.postgres.ranks: two ranks read through indexes, per chunk"),
        ("duckdb", "txnpipe.batch.duckdb_engine: quantile_cont over the points of a range"),
        ("spark", "txnpipe.batch.spark_engine: percentile over the points of a range"),
    ),
)
CHILD = ThresholdRule(
    pattern=2,
    action="CHILD",
    scope="pair",
    condition=all_of(at_least(PAIR_TXNS, Setting("child_min_txns")),
                     below(MEAN_VALUE, Setting("child_max_avg_value"))),
)
DEI_NEEDED = ThresholdRule(
    pattern=3,
    action="DEI-NEEDED",
    scope="merchant",
    condition=all_of(
        at_least(FEMALES, Setting("dei_min_female_customers")),
        below(FEMALES, times(Setting("dei_max_female_male_ratio"), MALES)),
    ),
)
CATALOGUE = Catalogue((UPGRADE, CHILD, DEI_NEEDED))
