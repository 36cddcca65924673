"""The README's settings table is the code's: names, defaults, nothing missing or extra."""
from __future__ import annotations

import re
from pathlib import Path

from txnpipe.core.settings import Settings

README = Path(__file__).parents[2] / "README.md"


def test_readme_settings_table_matches_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    documented = {name: float(default.strip()) for name, default in rows}
    assert documented == {k: float(v) for k, v in Settings().as_dict().items()}
