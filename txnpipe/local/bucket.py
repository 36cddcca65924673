"""The local run's bucket: made ready for a run, and mirrored into the output folder."""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from txnpipe.aws.s3store import S3Store
from txnpipe.core.errors import TxnpipeError
from txnpipe.local.preflight import OUTPUT_PREFIXES


def prepare_bucket(s3: Any, bucket: str, sources: tuple[str, ...]) -> None:
    """The bucket (keeping object versions, so that a stream reads the input it started
    from whatever is put later), and none of these streams' stale outputs."""
    try:
        s3.create_bucket(Bucket=bucket)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    try:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    except ClientError:
        pass  # an endpoint without versioning: the stream pins the input's ETag instead
    clear_outputs(S3Store(s3, bucket), sources)


def clear_outputs(store: S3Store, sources: tuple[str, ...]) -> None:
    """Delete these streams' chunks, detections and rejects from the bucket."""
    store.delete([key for prefix in OUTPUT_PREFIXES for s in sources
                  for key in store.keys(f"{prefix}{s}/")])  # fmt: skip


@dataclass(frozen=True)
class CopyingStore(S3Store):
    """The bucket, with every output written to ``out`` as well as it is put: copying the
    outputs at the end would GET each again (``_download`` then only checks them)."""

    out: Path = Path(".")

    def put(self, key: str, data: bytes) -> None:
        super().put(key, data)
        if key.startswith(OUTPUT_PREFIXES):
            _write(self.out, key, data)


def _write(out: Path, key: str, data: bytes) -> None:
    target = out / key
    if not target.resolve().is_relative_to(out.resolve()):
        raise TxnpipeError(f"refusing to write {key!r} outside {out}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def download(store: S3Store, out: Path, sources: tuple[str, ...]) -> dict[str, int]:
    """Copy these streams' outputs in the bucket to ``out`` under the same keys (another
    run's streams in a shared bucket are not this run's); returns detection files per
    source.

    A file copied as it was put is fetched again only if its MD5 is not the object's
    ETag, so what is left in ``out`` is exactly what the bucket holds.
    """
    listed = {key: etag for prefix in OUTPUT_PREFIXES for source in sources
              for key, etag in store.etags(f"{prefix}{source}/").items()}  # fmt: skip
    missing = [key for key, etag in listed.items() if not _holds(out / key, etag)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: _write(out, key, store.get(key)), missing))
    files: dict[str, int] = {}
    for key in listed:
        if key.startswith("detections/"):
            source = key.split("/")[1]
            files[source] = files.get(source, 0) + 1
    return files


def _holds(path: Path, etag: str) -> bool:
    return path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() == etag
