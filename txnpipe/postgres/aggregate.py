"""The chunk's aggregate statement, rendered from the rule catalogue.

``sql/aggregate.sql`` upserts the touched pairs and merchants; each rule adds one branch
that returns its candidates: a threshold rule's condition rendered as SQL over the
upserted rows (``aggregate_pair_rule.sql``, ``aggregate_merchant_rule.sql``), PatId1's
merchants past its minimum with what their evaluation needs
(``aggregate_percentile_rule.sql``). This is the one statement txnpipe builds at run time;
its text for the SPEC catalogue is pinned by a snapshot test.
"""
from __future__ import annotations

from functools import cache

from txnpipe.core.rules import Catalogue
from txnpipe.core.rules.aggregates import MERCHANT_SQL, PAIR_SQL
from txnpipe.core.rules.expressions import SqlDialect, render, sql_parameters
from txnpipe.core.settings import Settings
from txnpipe.postgres.statements import statement

_PAIRS = SqlDialect(PAIR_SQL, placeholder="%({name})s", eps="%(eps)s")
_MERCHANTS = SqlDialect(MERCHANT_SQL, placeholder="%({name})s", eps="%(eps)s")


@cache
def aggregate_sql(catalogue: Catalogue) -> str:
    branches = []
    for rules, template, dialect in ((catalogue.pair_rules, "aggregate_pair_rule", _PAIRS),
                                     (catalogue.merchant_rules, "aggregate_merchant_rule",
                                      _MERCHANTS)):  # fmt: skip
        for rule in rules:
            branch = statement(template).replace("__PATTERN__", str(rule.pattern))
            branches.append(branch.replace("__CONDITION__", render(rule.condition, dialect)))
    if (upgrade := catalogue.percentile_rule) is not None:
        percentile = statement("aggregate_percentile_rule")
        branches.append(percentile.replace("__PATTERN__", str(upgrade.pattern)))
    if not branches:
        raise ValueError("a catalogue without rules detects nothing")
    return statement("aggregate") + "UNION ALL\n".join(branches)


def aggregate_parameters(catalogue: Catalogue, settings: Settings) -> dict[str, int | float]:
    """The rules' bound values: each setting a condition reads, ε, PatId1's minimum."""
    conditions = [r.condition for r in (*catalogue.pair_rules, *catalogue.merchant_rules)]
    values = sql_parameters(conditions, settings)
    if catalogue.percentile_rule is not None:
        values["min_merchant_txns"] = catalogue.percentile_rule.values(settings)[0]
    return values
