"""Rows in COPY's text format: the one place that knows its escaping."""
from __future__ import annotations

from collections.abc import Sequence

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(rows: Sequence[tuple[str | float | int, ...]]) -> str:
    """Rows of one width in COPY's text format, built in one piece (a row at a time
    through ``write_row`` costs more than the server's insert). ``%s`` of a number is its
    ``repr``, which reads back to the same value. Counting tabs and line breaks over the
    whole text tells whether any value holds one (the counts only grow); only then, or for
    a backslash, is each value escaped."""
    width = len(rows[0]) if rows else 0
    line = "\t".join(["%s"] * width)
    text = "\n".join([line % row for row in rows])
    if (text.count("\t") != (width - 1) * len(rows) or text.count("\n") != len(rows) - 1
            or "\\" in text or "\r" in text):  # fmt: skip
        escaped = ("\t".join([str(v).translate(_COPY_ESCAPES) for v in row]) for row in rows)
        text = "\n".join(escaped)
    return text + "\n" if rows else ""
