"""What a run leaves in the bucket and in DIR: only its own outputs."""
from __future__ import annotations

from pathlib import Path

from tests.functional.cli_kit import IMPORTANCE, SEED_HEADER, run_fast, write
from txnpipe.local import services
from txnpipe.tools.cli import main


def test_a_rerun_into_the_same_bucket_leaves_only_its_own_outputs(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """The second, shorter run clears the first one's chunks and rejects, in the bucket and in DIR."""
    imp = write(tmp_path, "imp.csv", IMPORTANCE)
    for body in ("C1,M1,1,F,a\nC2,M1,x,M,a\n" * 3, "C1,M1,1,F,a\n"):
        tx = write(tmp_path, "again.csv", SEED_HEADER + body)
        assert run_fast(tmp_path, tx, imp, "--set", "chunk_rows=2", "--database-url", database_url,
                    "--s3-endpoint", s3_endpoint, "--bucket", bucket) == 0  # fmt: skip
    listed = services.client("s3", s3_endpoint).list_objects_v2(Bucket=bucket)
    assert {obj["Key"] for obj in listed["Contents"] if not obj["Key"].startswith("inputs/")} == {
        "chunks/again/chunk_000000.csv", "chunks/again/_manifest.json"
    }
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv")) == [
        "chunks/again/chunk_000000.csv"
    ]


def test_a_run_copies_to_dir_only_its_own_streams_of_a_shared_bucket(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """Another run's streams in the same bucket stay out of this run's folder."""
    imp = write(tmp_path, "imp.csv", IMPORTANCE)
    for name in ("first", "second"):
        tx = write(tmp_path, f"{name}.csv", SEED_HEADER + "C1,M1,1,F,a\n")
        assert main(["run", "--transactions", str(tx), "--importance", str(imp), "--out",
                     str(tmp_path / name), "--fast", "--database-url", database_url,
                     "--s3-endpoint", s3_endpoint, "--bucket", bucket]) == 0  # fmt: skip
    second = tmp_path / "second"
    assert sorted(p.relative_to(second).as_posix() for p in second.rglob("*.csv")) == [
        "chunks/second/chunk_000000.csv"]  # fmt: skip
