"""The command line as people expect it: help for every option, a version, python -m txnpipe."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from txnpipe import __version__
from txnpipe.tools.cli import _parser, main


def _commands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_of_every_command_has_help(name: str) -> None:
    parser = _commands()[name]
    missing = [a.dest for a in parser._actions if not a.help]
    assert missing == [] and parser.description
    text = parser.format_help()
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
            assert f"(default: {action.default})" in text, action.dest


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"txnpipe {__version__}\n"


def test_python_dash_m_txnpipe_is_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "txnpipe", "--version"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stdout == f"txnpipe {__version__}\n"
