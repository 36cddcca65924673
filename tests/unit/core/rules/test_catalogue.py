from __future__ import annotations

import pytest

from txnpipe.core.rules import CATALOGUE, UPGRADE, Catalogue, ThresholdRule
from txnpipe.core.rules.aggregates import MERCHANT_TXNS
from txnpipe.core.rules.expressions import Const, above
from txnpipe.core.settings import Settings


def test_the_catalogue_is_spec_4_2() -> None:
    assert [CATALOGUE.label(p) for p in CATALOGUE.patterns] == [
        ("PatId1", "UPGRADE"), ("PatId2", "CHILD"), ("PatId3", "DEI-NEEDED")]  # fmt: skip
    assert [r.pattern for r in CATALOGUE.pair_rules] == [2]
    assert [r.pattern for r in CATALOGUE.merchant_rules] == [3]
    assert CATALOGUE.percentile_rule is UPGRADE
    assert UPGRADE.values(Settings()) == (50_000, 0.99, 0.2)
    assert {engine for engine, _ in UPGRADE.implementations} == {"inline", "duckdb", "spark"}


def test_the_catalogue_names_every_rule_setting_of_spec_6() -> None:
    rule_settings = {s.name for s in CATALOGUE.settings()}
    assert rule_settings == {n for n in Settings.names()
                             if n.startswith(("upgrade_", "child_", "dei_"))}  # fmt: skip


def test_patterns_are_distinct_and_one_percentile_rule_at_most() -> None:
    big = ThresholdRule(2, "BIG", "merchant", above(MERCHANT_TXNS, Const(10)))
    with pytest.raises(ValueError, match="distinct"):
        CATALOGUE.with_rules(big)
    with pytest.raises(ValueError, match="at most one percentile rule"):
        Catalogue((UPGRADE, UPGRADE.__class__(9, "X", *UPGRADE.settings)))
    assert CATALOGUE.with_rules(ThresholdRule(9, "BIG", "merchant", big.condition)).patterns == (
        1, 2, 3, 9)  # fmt: skip
