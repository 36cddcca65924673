"""Conditions are data: rendered with ε where SPEC 4.2 puts it, and only there."""
from __future__ import annotations

import pytest

from txnpipe.core.rules import CHILD, DEI_NEEDED
from txnpipe.core.rules.aggregates import FEMALES, MALES, MEAN_VALUE, PAIR_SQL, PAIR_TXNS
from txnpipe.core.rules.expressions import (
    Const,
    Setting,
    SqlDialect,
    above,
    all_of,
    at_least,
    at_most,
    below,
    render,
    sql_parameters,
    times,
)
from txnpipe.core.settings import Settings

SQL = SqlDialect({"n": "n", "mean_value": "vs / n", "females": "f", "males": "m"},
                 placeholder=":{name}", eps=":eps")  # fmt: skip


def test_spec_rules_render_with_epsilon_on_non_integer_comparisons_only() -> None:
    assert render(CHILD.condition, SQL) == (
        "(n) >= :child_min_txns AND (vs / n) < :child_max_avg_value - :eps"
    )
    assert render(DEI_NEEDED.condition, SQL) == (
        "(f) >= :dei_min_female_customers AND (f) < :dei_max_female_male_ratio * (m) - :eps"
    )


@pytest.mark.parametrize(
    ("comparison", "text"),
    [(at_least(MEAN_VALUE, Const(2.5)), "(vs / n) >= 2.5 - :eps"),
     (at_most(MEAN_VALUE, Const(2.5)), "(vs / n) <= 2.5 + :eps"),
     (above(MEAN_VALUE, Const(2.5)), "(vs / n) > 2.5 + :eps"),
     (below(PAIR_TXNS, Const(3)), "(n) < 3"),
     (above(FEMALES, times(Const(2), MALES)), "(f) > 2 * (m)"),
     (above(FEMALES, times(Const(0.5), MALES)), "(f) > 0.5 * (m) + :eps")],
)  # fmt: skip
def test_each_operator_moves_its_threshold_by_epsilon_the_right_way(comparison, text) -> None:  # type: ignore[no-untyped-def]
    assert render(comparison, SQL) == text


def test_parameters_are_the_settings_read_and_epsilon() -> None:
    values = sql_parameters([CHILD.condition, DEI_NEEDED.condition], Settings())
    assert values == {"eps": 1e-9, "child_min_txns": 80, "child_max_avg_value": 20.0,
                      "dei_min_female_customers": 1000, "dei_max_female_male_ratio": 0.1}  # fmt: skip


def test_an_unknown_setting_is_refused_when_declared() -> None:
    with pytest.raises(ValueError, match="not a setting"):
        Setting("child_min_txn")


def test_every_quantity_has_sql_over_the_state() -> None:
    condition = all_of(at_least(PAIR_TXNS, Const(1)), below(MEAN_VALUE, Const(1.0)))
    assert "value_sum / n" in render(condition, SqlDialect(PAIR_SQL, ":{name}", ":eps"))
