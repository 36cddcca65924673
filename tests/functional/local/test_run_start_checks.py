"""``txnpipe run`` refuses what it cannot do before it starts (SPEC 5): one line, exit 2, and
nothing deleted, neither in DIR nor in the bucket; and it never touches its inputs."""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import detection_files
from tests.functional.datasets import dataset
from txnpipe.local import services
from txnpipe.tools.cli import main

SOURCE = "bs140513_032310"
SENTINEL = b"an earlier run's chunk\n"


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("a read-only file system needs mount (root): " + mounted.stderr.decode())
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def _args(out: Path, *extra: str) -> list[str]:
    ds = dataset()
    sets = [a for k, v in ds.settings.as_dict().items() for a in ("--set", f"{k}={v}")]
    return ["run", "--transactions", str(ds.transactions), "--importance", str(ds.importance),
            "--out", str(out), "--fast", *sets, *extra]  # fmt: skip


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("txnpipe: error: "), err
    return err


def _earlier_outputs(out: Path, s3_endpoint: str, bucket: str) -> Path:
    """An earlier run's chunk, in DIR and in the bucket, that a refused run must leave alone."""
    kept = out / "chunks" / SOURCE / "chunk_000000.csv"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(SENTINEL)
    services.client("s3", s3_endpoint).put_object(
        Bucket=bucket, Key=f"chunks/{SOURCE}/chunk_000000.csv", Body=SENTINEL
    )
    return kept


def _unchanged(kept: Path, s3_endpoint: str, bucket: str) -> bool:
    body = services.client("s3", s3_endpoint).get_object(
        Bucket=bucket, Key=f"chunks/{SOURCE}/chunk_000000.csv"
    )["Body"].read()
    return kept.read_bytes() == SENTINEL and body == SENTINEL


@pytest.mark.parametrize(
    ("database", "message"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", "cannot connect to the database"),
        ("not a url", "is not a PostgreSQL URL or conninfo"),
        ("{server}?dbname=no_such_database_x", "cannot connect to the database"),
        ("{server}?user=no_such_role_x", "cannot connect to the database"),
    ],
)
def test_a_database_that_cannot_be_reached_is_refused_at_start(
    tmp_path: Path, pg_server_url: str, s3_endpoint: str, bucket: str,
    capsys: pytest.CaptureFixture[str], database: str, message: str,
) -> None:  # fmt: skip
    url = database
    if "{server}" in database:
        params = dict(p.split("=") for p in database.split("?")[1].split("&"))
        url = psycopg.conninfo.make_conninfo(pg_server_url, **params)
    kept = _earlier_outputs(tmp_path / "out", s3_endpoint, bucket)
    code = main(_args(tmp_path / "out", "--database-url", url, "--s3-endpoint", s3_endpoint,
                      "--bucket", bucket))  # fmt: skip
    assert code == 2 and message in _one_line(capsys)
    assert _unchanged(kept, s3_endpoint, bucket)


def test_an_s3_endpoint_that_does_not_answer_is_refused_at_start(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for endpoint, message in (("http://127.0.0.1:1", "cannot reach the S3 endpoint"),
                              ("no-scheme:9", "is not a URL")):  # fmt: skip
        code = main(_args(tmp_path / "out", "--database-url", database_url,
                          "--s3-endpoint", endpoint))  # fmt: skip
        assert code == 2 and message in _one_line(capsys)
    with psycopg.connect(database_url) as conn:  # nothing was reset: no source registered
        assert conn.execute("SELECT to_regclass('txnpipe.sources')").fetchone() == (None,)


def test_an_output_folder_that_cannot_be_written_is_refused_at_start(
    tmp_path: Path, read_only_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    for out, message in ((a_file, "is a file, not a directory"),
                         (read_only_dir / "out", "is not writable: Read-only file system"),
                         (read_only_dir, "is not writable: Read-only file system"),
                         (Path("/proc/txnpipe-out"), "is not writable")):  # fmt: skip
        assert main(_args(out)) == 2 and message in _one_line(capsys)
    assert a_file.read_text() == "keep me"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--interval", "1e12"], "chunk_interval_seconds must be between 0 and 86,400"),
        (["--bucket", "Not_A_Bucket"], "is not a valid S3 bucket name"),
        (["--db-wait", "0"], "--db-wait must be between"),
    ],
)
def test_arguments_out_of_range_are_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    args = [a for a in _args(tmp_path / "out") if a != "--fast"] + extra
    assert main(args) == 2 and message in _one_line(capsys)
    assert not (tmp_path / "out").exists()


def test_inputs_are_never_touched_and_never_confused(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """An input inside DIR's chunks/ survives the run; transactions and importance files of
    the same name (in different folders) go to different keys."""
    ds = dataset()
    out = tmp_path / "out"
    transactions = out / "chunks" / "data.csv"
    transactions.parent.mkdir(parents=True)
    shutil.copy(ds.transactions, transactions)
    importance = tmp_path / "b" / "data.csv"
    importance.parent.mkdir()
    shutil.copy(ds.importance, importance)
    sets = [a for k, v in ds.settings.as_dict().items() for a in ("--set", f"{k}={v}")]
    for _ in range(2):  # the second run clears the first one's outputs, not the input
        code = main(["run", "--transactions", str(transactions), "--importance", str(importance),
                     "--out", str(out), "--fast", "--database-url", database_url,
                     "--s3-endpoint", s3_endpoint, "--bucket", bucket, *sets])  # fmt: skip
        assert code == 0
        assert transactions.read_bytes() == ds.transactions.read_bytes()
        assert detection_files(out, "data") == ds.expected()


def test_an_input_where_an_output_goes_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = dataset()
    out = tmp_path / "out"
    inside = out / "chunks" / "data" / "chunk_000000.csv"
    inside.parent.mkdir(parents=True)
    shutil.copy(ds.transactions, inside.parent / "data.csv")
    shutil.copy(ds.importance, inside)
    code = main(["run", "--transactions", str(inside.parent / "data.csv"), "--importance",
                 str(inside), "--out", str(out), "--fast"])  # fmt: skip
    assert code == 2 and "lies where the run writes its outputs" in _one_line(capsys)
    assert inside.read_bytes() == ds.importance.read_bytes()


def test_two_transactions_files_with_one_source_name_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = dataset()
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(ds.transactions, tmp_path / folder / "tx.csv")
    code = main(["run", "--transactions", str(tmp_path / "a" / "tx.csv"), "--transactions",
                 str(tmp_path / "b" / "tx.csv"), "--importance", str(ds.importance),
                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 2 and "the same source name 'tx'" in _one_line(capsys)
