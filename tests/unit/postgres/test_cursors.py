from __future__ import annotations

import pytest

from txnpipe.postgres.cursors import (
    FLOOR_SHARE,
    RAISE_BELOW,
    Cursor,
    floor_too_low,
    new_floor,
    pages,
)


def test_the_floor_trails_the_count_threshold() -> None:
    assert new_floor(100.0) == 90 and new_floor(0.5) == 1
    assert not floor_too_low(90, 100.0) and floor_too_low(90, 112.6)
    assert FLOOR_SHARE > RAISE_BELOW  # a new floor is never too low at once


@pytest.mark.parametrize(
    ("first", "last", "cursor", "expected"),
    [(3, 4, None, [("first", None, None, 3, 2)]),
     (5, 6, Cursor(7.0, "C", 5), [("on", 7.0, "C", 0, 2)]),
     (8, 8, Cursor(7.0, "C", 5), [("on", 7.0, "C", 3, 1)]),
     (2, 3, Cursor(7.0, "C", 5), [("before", 7.0, "C", 1, 2)]),
     (4, 5, Cursor(7.0, "C", 5), [("before", 7.0, "C", 0, 1), ("on", 7.0, "C", 0, 1)])],
)  # fmt: skip
def test_pages_step_from_the_cursor(first, last, cursor, expected) -> None:  # type: ignore[no-untyped-def]
    assert pages(first, last, cursor) == expected


def test_a_cursor_needs_all_three_parts() -> None:
    assert Cursor.of(1.0, "C", 3) == Cursor(1.0, "C", 3)
    assert Cursor.of(None, "C", 3) is None and Cursor.of(1.0, None, 3) is None
