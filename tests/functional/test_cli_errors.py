"""`txnpipe run` on bad arguments and unusable files: one line, exit 2, nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.cli_kit import IMPORTANCE, SEED_HEADER, run_fast, write


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"a,b,c\n1,2,3\n", "matches no layout: seed layout is missing CustomerId"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not CSV text: its header line is not valid UTF-8"),
        ("CustomerId;MerchantId\n".encode("utf-16"), "binary, not CSV text"),
        (b"Customer\xffId,MerchantId\n", "not valid UTF-8"),
        (b"CustomerId,MerchantId\x00,transaction_value,gender,transaction_type\n", "binary"),
        (b"CustomerId,MerchantId,transaction_value,gender,transaction_type\rC1,M1,1,F,a\r",
         "bare CR"),
        (b"CustomerId,MerchantId,transaction_value,gender,transaction_type\r"
         + b"C1,M1,1,F,a\r" * 200_000, "bare CR"),
    ],
)
def test_unusable_transactions_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    tx = write(tmp_path, "tx.csv", content)
    imp = write(tmp_path, "imp.csv", IMPORTANCE)
    assert run_fast(tmp_path, tx, imp) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("txnpipe: error:")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "chunk_rows=0"], "chunk_rows must be between 1"),
        (["--set", "nope=1"], "unknown setting 'nope'"),
        (["--chunk-rows", "x"], "invalid int value"),
        (["--interval", "3"], "not allowed with argument --fast"),
    ],
)
def test_bad_arguments_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    tx = write(tmp_path, "tx.csv", SEED_HEADER + "C1,M1,1,F,a\n")
    imp = write(tmp_path, "imp.csv", IMPORTANCE)
    assert run_fast(tmp_path, tx, imp, *args) == 2
    assert message in capsys.readouterr().err


def test_missing_file_and_escaping_source_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imp = write(tmp_path, "imp.csv", IMPORTANCE)
    assert run_fast(tmp_path, tmp_path / "nope.csv", imp) == 2
    assert "does not exist" in capsys.readouterr().err
    dots = write(tmp_path, "..csv", SEED_HEADER + "C1,M1,1,F,a\n")
    assert run_fast(tmp_path, dots, imp) == 2
    assert "source name" in capsys.readouterr().err
    assert run_fast(tmp_path, tmp_path, imp) == 2
    assert "is a directory" in capsys.readouterr().err


