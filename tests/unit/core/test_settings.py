from __future__ import annotations

import pytest

from txnpipe.core.errors import TxnpipeError
from txnpipe.core.settings import Settings


def test_defaults_match_the_spec() -> None:
    s = Settings()
    assert (s.chunk_rows, s.chunk_interval_seconds, s.detection_batch_rows) == (1000, 7, 100)
    assert (s.upgrade_min_merchant_txns, s.upgrade_count_percentile) == (50000, 0.99)
    assert (s.upgrade_weight_percentile, s.child_min_txns, s.child_max_avg_value) == (0.2, 80, 20)
    assert (s.dei_min_female_customers, s.dei_max_female_male_ratio) == (1000, 0.1)


def test_environment_then_set_later_wins() -> None:
    env = {"TXNPIPE_CHUNK_ROWS": "10", "TXNPIPE_CHILD_MIN_TXNS": "5", "OTHER": "x"}
    s = Settings.from_sources(env, ["child_min_txns=7"])
    assert s.chunk_rows == 10 and s.child_min_txns == 7


@pytest.mark.parametrize(
    ("assign", "message"),
    [
        ("chunk_rows=0", "chunk_rows must be between 1 and 1,000,000"),
        ("chunk_rows=1e12", "chunk_rows must be at most 2,147,483,647"),
        ("chunk_interval_seconds=1e12", "chunk_interval_seconds must be between 0 and 86,400"),
        ("chunk_interval_seconds=1e400", "finite"),
        ("child_min_txns=1e20", "at most 2,147,483,647"),
        ("chunk_rows=1.5", "must be an integer"),
        ("upgrade_count_percentile=1.2", "between 0 and 1"),
        ("child_max_avg_value=abc", "must be a number"),
        ("child_max_avg_value=nan", "finite"),
        ("no_such=1", "unknown setting 'no_such'"),
        ("chunk_rows", "NAME=VALUE"),
    ],
)
def test_bad_settings_are_named(assign: str, message: str) -> None:
    with pytest.raises(TxnpipeError, match=message):
        Settings.from_sources({}, [assign])


def test_bad_environment_value_is_named() -> None:
    with pytest.raises(TxnpipeError, match="detection_batch_rows"):
        Settings.from_sources({"TXNPIPE_DETECTION_BATCH_ROWS": "-1"})
