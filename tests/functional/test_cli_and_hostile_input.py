"""`txnpipe run` on bad arguments and hostile input: one-line errors, rejects, never a crash."""
from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.conftest import detection_files
from tests.reference import reference_detections
from txnpipe.adapters import pgstore
from txnpipe.cli import main
from txnpipe.local import services
from txnpipe.settings import Settings

SEED_HEADER = "CustomerId,MerchantId,transaction_value,gender,transaction_type\n"
IMPORTANCE = "CustomerId,transaction_type,weightage\n"


def _write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _run(tmp_path: Path, tx: Path, imp: Path, *extra: str) -> int:
    return main(["run", "--transactions", str(tx), "--importance", str(imp),
                 "--out", str(tmp_path / "out"), "--fast", *extra])  # fmt: skip


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
    tx = _write(tmp_path, "tx.csv", content)
    imp = _write(tmp_path, "imp.csv", IMPORTANCE)
    assert _run(tmp_path, tx, imp) == 2
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
    tx = _write(tmp_path, "tx.csv", SEED_HEADER + "C1,M1,1,F,a\n")
    imp = _write(tmp_path, "imp.csv", IMPORTANCE)
    assert _run(tmp_path, tx, imp, *args) == 2
    assert message in capsys.readouterr().err


def test_missing_file_and_escaping_source_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imp = _write(tmp_path, "imp.csv", IMPORTANCE)
    assert _run(tmp_path, tmp_path / "nope.csv", imp) == 2
    assert "does not exist" in capsys.readouterr().err
    dots = _write(tmp_path, "..csv", SEED_HEADER + "C1,M1,1,F,a\n")
    assert _run(tmp_path, dots, imp) == 2
    assert "source name" in capsys.readouterr().err
    assert _run(tmp_path, tmp_path, imp) == 2
    assert "is a directory" in capsys.readouterr().err


HOSTILE_IDS = [
    '"C""quoted"""',
    "C;1",
    "'; DROP TABLE txnpipe.pairs; --",
    "Robert'); DELETE FROM txnpipe.detections;--",
    "客户-7",
    "Ωmega",
    '"C,comma"',
]


def test_hostile_ids_are_data_not_queries(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    lines = []
    for i, customer in enumerate(HOSTILE_IDS * 3):
        merchant = "Мерчант" if i % 2 else "M'1"
        lines.append(f'{customer},"{merchant}",{i % 5}.5,{"F" if i % 3 else "M"},ty;pe\n')
    lines.insert(5, "C9," + "x" * 100_000 + ",1,F,t\n")  # a 100 KB merchant id: rejected
    lines.insert(7, 'C9,"M\n9",abc,F,t\n')  # a quoted line break, then a bad value
    tx = _write(tmp_path, "hostile.csv", SEED_HEADER + "".join(lines))
    imp = _write(tmp_path, "imp.csv", IMPORTANCE + "'; DROP TABLE x; --,ty;pe,1\nΩmega,ty;pe,2\n")
    settings = {"chunk_rows": "4", "child_min_txns": "2", "child_max_avg_value": "10",
                "dei_min_female_customers": "1", "dei_max_female_male_ratio": "5",
                "upgrade_min_merchant_txns": "3", "detection_batch_rows": "4"}  # fmt: skip
    sets = [arg for k, v in settings.items() for arg in ("--set", f"{k}={v}")]
    code = _run(tmp_path, tx, imp, *sets, "--database-url", database_url,
                "--s3-endpoint", s3_endpoint, "--bucket", bucket)  # fmt: skip
    assert code == 0
    out = tmp_path / "out"
    rejects = (out / "rejects" / "hostile" / "chunk_000001.csv").read_text()
    assert "longer than 1000 bytes" in rejects and "not a finite number" in rejects
    without_long = SEED_HEADER + "".join(lines[:5] + ["C9,M9,-1,F,t\n"] + lines[6:])
    typed = Settings().replace(settings).as_dict()
    expected = reference_detections(without_long.encode(), imp.read_bytes(), typed)
    got = detection_files(out, "hostile")
    assert got == expected and {r[2] for f in got for r in f} >= {"'; DROP TABLE txnpipe.pairs; --"}
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM txnpipe.pairs").fetchone()[0] > 0


def test_header_only_file_is_an_empty_stream(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    tx = _write(tmp_path, "no_records.csv", SEED_HEADER)
    imp = _write(tmp_path, "imp.csv", IMPORTANCE)
    code = _run(tmp_path, tx, imp, "--database-url", database_url, "--s3-endpoint", s3_endpoint,
                "--bucket", bucket)  # fmt: skip
    assert code == 0
    manifest = tmp_path / "out" / "chunks" / "no_records" / "_manifest.json"
    assert manifest.read_text() == '{"chunks": 0, "records": 0}'
    assert not (tmp_path / "out" / "detections" / "no_records").exists()


def test_status_on_the_kept_embedded_database_of_a_run(
    tmp_path: Path, s3_endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tx = _write(tmp_path, "kept.csv", SEED_HEADER + "C1,M1,1,F,a\nC2,M1,2,M,a\n")
    imp = _write(tmp_path, "imp.csv", IMPORTANCE)
    pg_data = tmp_path / "pgdata"
    assert _run(tmp_path, tx, imp, "--pg-data", str(pg_data), "--s3-endpoint", s3_endpoint,
                "--bucket", bucket) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["status", "--pg-data", str(pg_data), "--json"]) == 0
    (stream,) = json.loads(capsys.readouterr().out)["sources"]
    assert (stream["source"], stream["ended"], stream["chunks_applied"]) == ("kept", True, 1)


def test_embedded_server_settings_apply_at_every_start(tmp_path: Path) -> None:
    """The settings are the server's command line: the first start and the next have them."""
    for _ in range(2):
        with services.postgres(None, tmp_path / "pgdata") as url, psycopg.connect(url) as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
            row = conn.execute("SELECT setting::bigint * 8 / 1024 || 'MB' FROM pg_settings"
                               " WHERE name = 'shared_buffers'").fetchone()  # fmt: skip
            assert row == (services.embedded_settings()["shared_buffers"],)


@pytest.mark.parametrize("odd", ["tab\there", "line\nbreak", "carriage\rreturn", "back\\slash", "\\N"])
def test_copy_text_reads_back_every_value_as_written(database_url: str, odd: str) -> None:
    """Values that COPY's text format must escape come back as they went in, whichever row
    holds them, and so do numbers (their repr)."""
    rows = [(1, "plain", 0.1), (2, odd, 1e-300), (3, f"{odd}{odd}", -2.5), (4, "last", 7.0)]
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TEMP TABLE t (i bigint, s text, v float8)")
        with conn.cursor().copy("COPY t (i, s, v) FROM STDIN") as copy:
            copy.write(pgstore._copy_text(rows))
        assert conn.execute("SELECT i, s, v FROM t ORDER BY i").fetchall() == rows


def test_a_rerun_into_the_same_bucket_leaves_only_its_own_outputs(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """The second, shorter run clears the first one's chunks and rejects, in the bucket and in DIR."""
    imp = _write(tmp_path, "imp.csv", IMPORTANCE)
    for body in ("C1,M1,1,F,a\nC2,M1,x,M,a\n" * 3, "C1,M1,1,F,a\n"):
        tx = _write(tmp_path, "again.csv", SEED_HEADER + body)
        assert _run(tmp_path, tx, imp, "--set", "chunk_rows=2", "--database-url", database_url,
                    "--s3-endpoint", s3_endpoint, "--bucket", bucket) == 0  # fmt: skip
    listed = services.client("s3", s3_endpoint).list_objects_v2(Bucket=bucket)
    assert {obj["Key"] for obj in listed["Contents"] if not obj["Key"].startswith("inputs/")} == {
        "chunks/again/chunk_000000.csv", "chunks/again/_manifest.json"
    }
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv")) == [
        "chunks/again/chunk_000000.csv"
    ]
