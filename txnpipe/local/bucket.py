"""The local run's bucket: made ready for a run, and mirrored into the output folder."""
from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from txnpipe.aws.s3store import S3Store
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.keys import ChunkRef, chunk_key, parse_chunk_key
from txnpipe.core.ports import ObjectVersion
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
class _Upload:
    """An input this run put into its own bucket, as the file it came from."""

    path: Path
    version: ObjectVersion
    stat: tuple[int, int]  # size and mtime in ns when it was put

    def read(self, start: int, length: int) -> tuple[bytes, int]:
        st = self.path.stat()
        if (st.st_size, st.st_mtime_ns) != self.stat:
            raise TxnpipeError(f"transactions file {self.path} changed during the run; "
                               "run again once it is complete")  # fmt: skip
        with self.path.open("rb") as f:
            f.seek(start)
            return f.read(length), self.stat[0]


@dataclass(frozen=True)
class CopyingStore(S3Store):
    """The bucket, with every output written to ``out`` as well as it is put: copying the
    outputs at the end would GET each again (``download`` then only checks them).

    A run's ``own`` bucket (the in-process one) holds its objects in memory, every version
    of each, and reads a whole object to serve any range of it. So for that bucket only:

    - the chunker's ranges of an input the run put (``upload``) are read from the file it
      came from, while that file is unchanged: at 10x each ranged GET from the bucket would
      copy the whole 480 MB input into memory;
    - with ``evict``, a chunk leaves the bucket once the detector has applied it
      (``applied``): the copy in ``out`` is the one kept. Otherwise the run's memory grows
      with its stream (at 10x, 600 MB of chunks no one reads again). A run with a batch
      engine keeps its chunks: the engine reads them back.

    A bucket given by ``--s3-endpoint`` keeps what it was sent and serves every read.
    """

    out: Path = Path(".")
    own: bool = False
    evict: bool = False  # only with ``own``
    evict_every: int = 100  # chunk versions deleted per request
    _uploads: dict[str, _Upload] = field(default_factory=dict, repr=False)
    _chunks: dict[ChunkRef, list[str | None]] = field(default_factory=dict, repr=False)
    _evicted: dict[str, int] = field(default_factory=dict, repr=False)  # source -> below
    _due: list[tuple[str, str | None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def upload(self, path: Path, key: str) -> None:
        """Put the file at ``path`` as ``key`` (a multipart upload for a large one)."""
        stat = path.stat()
        self.client.upload_file(str(path), self.bucket, key)
        if self.own:
            self._uploads[key] = _Upload(path, self.version(key),
                                         (stat.st_size, stat.st_mtime_ns))  # fmt: skip

    def get_range(self, key: str, start: int, length: int,
                  version: ObjectVersion | None = None) -> tuple[bytes, int]:  # fmt: skip
        upload = self._uploads.get(key)
        if upload is None or version != upload.version:
            return super().get_range(key, start, length, version)
        return upload.read(start, length)

    def put(self, key: str, data: bytes) -> None:
        version = self.put_version(key, data)
        if key.startswith(OUTPUT_PREFIXES):
            _write(self.out, key, data)
        ref = parse_chunk_key(key) if self.evict else None
        if ref is not None and ref.chunk is not None:
            with self._lock:
                self._chunks.setdefault(ref, []).append(version)

    def applied(self, source: str, chunk: int) -> None:
        """Chunks up to ``chunk`` of ``source`` are applied (so all before it are): delete
        every version of each, a request per ``evict_every``."""
        if not self.evict:
            return
        with self._lock:
            for c in range(self._evicted.get(source, 0), chunk + 1):
                versions = self._chunks.pop(ChunkRef(source, c), [])
                self._due.extend((chunk_key(source, c), v) for v in versions)
            self._evicted[source] = max(self._evicted.get(source, 0), chunk + 1)
            if len(self._due) < self.evict_every:
                return
            due = list(self._due)
            self._due.clear()
        self.delete_versions(due)


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
    ETag, so what is left in ``out`` is exactly what the bucket holds (and the chunks
    evicted from it, as they were put).
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
