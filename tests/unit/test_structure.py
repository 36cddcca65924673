"""The package's shape, checked: one home for each rule setting, a pure core, SQL kept as SQL,
modules small enough to read."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from txnpipe.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "txnpipe"
MODULES = sorted(PACKAGE.rglob("*.py"))
RULE_SETTINGS = [n for n in Settings.names() if n.startswith(("upgrade_", "child_", "dei_"))]
IO_LIBRARIES = ("boto3", "botocore", "psycopg", "duckdb", "pyspark", "pyarrow", "moto",
                "aws_lambda_powertools", "pgserver")  # fmt: skip
SQL = re.compile(r"\b(SELECT\s+\S|INSERT\s+INTO|UPDATE\s+\w+(\.\w+)?\s+SET|DELETE\s+FROM|"
                 r"CREATE\s+(TEMP\s+)?TABLE|ALTER\s+TABLE)\b")  # fmt: skip


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_each_rule_setting_is_named_only_in_the_settings_and_the_catalogue() -> None:
    allowed = {"txnpipe/core/settings.py", "txnpipe/core/rules/catalogue.py"}
    sources = MODULES + sorted((ROOT / "glue_jobs").glob("*.py")) + sorted(PACKAGE.rglob("*.sql"))
    named = {_relative(p) for p in sources
             if any(name in p.read_text() for name in RULE_SETTINGS)}  # fmt: skip
    assert named == allowed


@pytest.mark.parametrize("module", MODULES, ids=_relative)
def test_no_module_is_over_450_lines(module: Path) -> None:
    assert len(module.read_text().splitlines()) <= 450


def _imports(module: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0] if not node.module.startswith("txnpipe.")
                      else node.module)  # fmt: skip
    return found


@pytest.mark.parametrize("module", sorted((PACKAGE / "core").rglob("*.py")), ids=_relative)
def test_the_core_imports_no_io_library_and_nothing_outside_it(module: Path) -> None:
    imports = _imports(module)
    assert not imports & set(IO_LIBRARIES)
    assert all(i.startswith("txnpipe.core") for i in imports if i.startswith("txnpipe."))


@pytest.mark.parametrize("module", MODULES, ids=_relative)
def test_sql_lives_in_sql_files(module: Path) -> None:
    strings = [node.value for node in ast.walk(ast.parse(module.read_text()))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]  # fmt: skip
    docstrings = {ast.get_docstring(n, clean=False) for n in ast.walk(ast.parse(module.read_text()))
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))}  # fmt: skip
    assert [s for s in strings if SQL.search(s) and s not in docstrings] == []


def test_ruff_finds_nothing_anywhere_in_the_repository() -> None:
    """Lint is part of the tests, so that it holds on every commit (pyproject's settings,
    ruff pinned by the lock file); it had drifted to 54 findings while nothing ran it."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                           "--output-format", "concise", str(ROOT)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
