"""What every engine keeps per pair and per merchant, and the quantities rules read from it.

The state is defined once here: a (merchant, customer) pair keeps running sums, a merchant
its totals, and every quantity of SPEC 4.2 is derived from them in the same way by every
engine. The SQL engines (PostgreSQL, DuckDB) name their columns after these fields, so the
expressions below serve both; Spark uses the same names.
"""
from __future__ import annotations

from dataclasses import dataclass

from txnpipe.core.rules.expressions import Quantity


@dataclass(frozen=True)
class PairState:
    """Running sums of one customer's transactions at one merchant."""

    n: int  # n(c,m): transactions
    value_sum: float
    weight_sum: float  # over the transactions that have a weight
    weighted_txns: int  # how many have one


@dataclass(frozen=True)
class MerchantState:
    n: int  # N(m): every transaction at m
    females: int  # F(m): distinct customers whose gender is F
    males: int  # M(m)


# Pair quantities
PAIR_TXNS = Quantity("n", True, "n(c,m): c's transactions at m")
MEAN_VALUE = Quantity("mean_value", False, "avg(c,m): their mean value")
MEAN_WEIGHT = Quantity("mean_weight", False, "w(c,m): the mean weight of those with one")
# Merchant quantities
MERCHANT_TXNS = Quantity("merchant_txns", True, "N(m): all transactions at m")
FEMALES = Quantity("females", True, "F(m): distinct female customers of m")
MALES = Quantity("males", True, "M(m): distinct male customers of m")

PAIR_QUANTITIES = (PAIR_TXNS, MEAN_VALUE, MEAN_WEIGHT)
MERCHANT_QUANTITIES = (MERCHANT_TXNS, FEMALES, MALES)

# Each quantity in SQL over a pair's or a merchant's state columns (``PairState``,
# ``MerchantState``): NULL where SPEC 4.2 says "none".
PAIR_SQL = {
    "n": "n",
    "mean_value": "value_sum / n",
    "mean_weight": "CASE WHEN weighted_txns > 0 THEN weight_sum / weighted_txns END",
}
MERCHANT_SQL = {"merchant_txns": "n", "females": "females", "males": "males"}
