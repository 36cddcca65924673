"""The one statement rendered at run time: pinned for the SPEC catalogue, so that a change to
a rule's rendering (a ``<`` turned ``<=``) shows here as well as in every engine's boundary
tests."""
from __future__ import annotations

from pathlib import Path

from txnpipe.core.rules import CATALOGUE, ThresholdRule
from txnpipe.core.rules.aggregates import MEAN_WEIGHT
from txnpipe.core.rules.expressions import Const, at_most
from txnpipe.core.settings import Settings
from txnpipe.postgres.aggregate import aggregate_parameters, aggregate_sql

SNAPSHOT = Path(__file__).with_name("aggregate.snapshot.sql")


def test_the_aggregate_for_the_spec_catalogue_is_the_snapshot() -> None:
    assert aggregate_sql(CATALOGUE) == SNAPSHOT.read_text()


def test_an_extra_rule_adds_one_branch_and_its_parameters() -> None:
    light = ThresholdRule(4, "LIGHT", "pair", at_most(MEAN_WEIGHT, Const(0.25)))
    sql = aggregate_sql(CATALOGUE.with_rules(light))
    assert sql.count("UNION ALL") == aggregate_sql(CATALOGUE).count("UNION ALL") + 1
    assert "SELECT 4, merchant, customer" in sql
    assert "(CASE WHEN weighted_txns > 0 THEN weight_sum / weighted_txns END) <= 0.25 + %(eps)s" in sql
    params = aggregate_parameters(CATALOGUE, Settings())
    assert params["min_merchant_txns"] == 50_000 and params["child_min_txns"] == 80
