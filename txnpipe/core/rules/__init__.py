"""SPEC 4.2's patterns: the catalogue, the conditions it is written in, and the percentile
arithmetic every engine shares (see ``catalogue``)."""
from txnpipe.core.rules.catalogue import (
    CATALOGUE,
    CHILD,
    DEI_NEEDED,
    UPGRADE,
    Catalogue,
    PercentileRule,
    Rule,
    ThresholdRule,
)
from txnpipe.core.rules.percentiles import (
    EPS,
    at_most,
    interpolate,
    least_count_at_least,
    percentile_cont,
    percentile_ranks,
)

__all__ = [
    "CATALOGUE", "CHILD", "DEI_NEEDED", "EPS", "UPGRADE", "Catalogue", "PercentileRule", "Rule",
    "ThresholdRule", "at_most", "interpolate", "least_count_at_least", "percentile_cont",
    "percentile_ranks",
]  # fmt: skip
