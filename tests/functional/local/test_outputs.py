"""What a run leaves in the bucket and in DIR: only its own outputs."""
from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.functional.cli_kit import IMPORTANCE, SEED_HEADER, run_fast, write
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.keys import chunk_key, manifest_key
from txnpipe.local import services
from txnpipe.local.bucket import CopyingStore
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


def _versions(s3: object, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix)  # type: ignore[attr-defined]
    return sorted(v["Key"] for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []))


def test_the_runs_own_bucket_drops_every_version_of_each_applied_chunk(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    """Applied chunks leave the in-process bucket (which holds them in memory) for good,
    every version of each, a request per ``evict_every``; DIR keeps them, and the chunks
    not yet applied, the manifest and the detections stay in the bucket."""
    s3 = services.client("s3", s3_endpoint)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = CopyingStore(s3, bucket, tmp_path, own=True, evict=True, evict_every=3)
    for chunk in (0, 0, 1, 2, 3):  # chunk 0 put twice (a chunker retried): two versions
        store.put(chunk_key("s", chunk), f"chunk {chunk}".encode())
    store.put(manifest_key("s"), b"{}")
    store.put("detections/s/detections_000000.csv", b"d")
    store.applied("s", 0)  # two versions due: fewer than evict_every, none deleted yet
    assert len(_versions(s3, bucket, "chunks/s/chunk_000000")) == 2
    store.applied("s", 2)  # chunk 1 and 2 are applied with it
    assert _versions(s3, bucket, "chunks/") == sorted([chunk_key("s", 3), manifest_key("s")])
    assert _versions(s3, bucket, "detections/") == ["detections/s/detections_000000.csv"]
    assert (tmp_path / chunk_key("s", 1)).read_bytes() == b"chunk 1"
    assert sorted(p.name for p in (tmp_path / "chunks" / "s").iterdir()) == [
        "_manifest.json", *(f"chunk_{i:06d}.csv" for i in range(4))]  # fmt: skip


def test_a_bucket_given_by_endpoint_keeps_every_chunk(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    s3 = services.client("s3", s3_endpoint)
    store = CopyingStore(s3, bucket, tmp_path, evict_every=1)
    store.put(chunk_key("s", 0), b"chunk 0")
    store.applied("s", 0)
    assert _versions(s3, bucket, "chunks/") == [chunk_key("s", 0)]


def test_the_runs_own_bucket_serves_an_uploaded_inputs_ranges_from_its_file(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    """The bucket's copy is not read (it is even gone here), only the file; a file changed
    under the run is an error that says so, and another version goes to the bucket."""
    s3 = services.client("s3", s3_endpoint)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    path = write(tmp_path, "tx.csv", b"0123456789")
    store = CopyingStore(s3, bucket, tmp_path / "out", own=True)
    store.upload(path, "inputs/transactions/tx.csv")
    pinned = store.version("inputs/transactions/tx.csv")
    s3.delete_object(Bucket=bucket, Key="inputs/transactions/tx.csv",
                     VersionId=pinned.version_id)  # fmt: skip
    assert store.get_range("inputs/transactions/tx.csv", 3, 4, pinned) == (b"3456", 10)
    assert store.get_range("inputs/transactions/tx.csv", 12, 4, pinned) == (b"", 10)
    with pytest.raises(ClientError):  # any other version is read from the bucket
        store.get_range("inputs/transactions/tx.csv", 0, 4, None)
    path.write_bytes(b"0123456789 and more")
    with pytest.raises(TxnpipeError, match="tx.csv changed during the run"):
        store.get_range("inputs/transactions/tx.csv", 0, 4, pinned)


def test_a_bucket_given_by_endpoint_serves_every_range(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    s3 = services.client("s3", s3_endpoint)
    path = write(tmp_path, "tx.csv", b"0123456789")
    store = CopyingStore(s3, bucket, tmp_path / "out")
    store.upload(path, "inputs/transactions/tx.csv")
    path.write_bytes(b"changed!!!")
    version = store.version("inputs/transactions/tx.csv")
    assert store.get_range("inputs/transactions/tx.csv", 0, 4, version) == (b"0123", 10)
