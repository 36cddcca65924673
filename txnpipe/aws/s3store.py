"""S3 behind the ObjectStore seam; the boto3 client is injected (moto locally, AWS in Lambda)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from txnpipe.core.errors import TxnpipeError
from txnpipe.core.ports import InputChanged, ObjectVersion


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _pinned(version: ObjectVersion | None) -> dict[str, str]:
    """The request arguments that read exactly ``version``: its version id where the bucket
    keeps versions, else the condition that the ETag is still the same."""
    if version is None:
        return {}
    if version.version_id is not None:
        return {"VersionId": version.version_id}
    return {"IfMatch": f'"{version.etag}"'}


def _raise_if_changed(exc: ClientError, key: str) -> None:
    if _code(exc) in ("PreconditionFailed", "NoSuchVersion", "412"):
        raise InputChanged(f"{key!r} is no longer the object its stream started from"
                           " (it was put again or deleted)") from None  # fmt: skip


@dataclass(frozen=True)
class S3Store:
    client: Any
    bucket: str

    def get(self, key: str, version: ObjectVersion | None = None) -> bytes:
        try:
            res = self.client.get_object(Bucket=self.bucket, Key=key, **_pinned(version))
        except ClientError as exc:
            _raise_if_changed(exc, key)
            raise
        body: bytes = res["Body"].read()
        return body

    def get_range(
        self, key: str, start: int, length: int, version: ObjectVersion | None = None
    ) -> tuple[bytes, int]:
        pinned = _pinned(version)
        try:
            res = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}", **pinned
            )
        except ClientError as exc:
            _raise_if_changed(exc, key)
            if _code(exc) != "InvalidRange":
                raise
            size = self.client.head_object(Bucket=self.bucket, Key=key, **pinned)["ContentLength"]
            return b"", int(size)
        data: bytes = res["Body"].read()
        content_range = res.get("ContentRange")
        size = int(content_range.rsplit("/", 1)[1]) if content_range else len(data)
        return data, size

    def version(self, key: str) -> ObjectVersion:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            # S3 answers 403, not 404, for a missing key to a caller that may not list it
            if _code(exc) in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied"):
                raise KeyError(key) from None
            raise
        version_id = head.get("VersionId")
        return ObjectVersion(None if version_id in (None, "null") else version_id,
                             head["ETag"].strip('"'))  # fmt: skip

    def latest(self, prefix: str) -> tuple[str, ObjectVersion] | None:
        """From one listing of versions (``s3:ListBucketVersions`` on the prefix: no read of
        the object itself); a bucket that keeps no versions lists each object as "null"."""
        pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket,
                                                                           Prefix=prefix)  # fmt: skip
        current = [v for page in pages for v in page.get("Versions", [])
                   if v["IsLatest"] and not v["Key"].endswith("/")]  # fmt: skip
        if not current:
            return None
        newest = max(current, key=lambda v: (v["LastModified"], v["Key"]))
        version_id = newest.get("VersionId")
        return newest["Key"], ObjectVersion(None if version_id in (None, "null") else version_id,
                                            newest["ETag"].strip('"'))  # fmt: skip

    def exists(self, key: str) -> bool:
        """By listing, not a HEAD: a function may list the prefix it reads (``chunks/``),
        and for a missing key a HEAD answers 403 to a caller without ``s3:ListBucket`` on
        the whole bucket."""
        return key in self.list_keys(key, limit=1)

    def list_keys(self, prefix: str, start_after: str = "", limit: int = 1000) -> list[str]:
        args = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": min(limit, 1000)}
        if start_after:
            args["StartAfter"] = start_after
        listing = self.client.list_objects_v2(**args)
        return [obj["Key"] for obj in listing.get("Contents", [])][:limit]

    def prefixes(self, prefix: str) -> list[str]:
        """The "folders" directly under ``prefix`` (``chunks/`` -> every stream's name)."""
        found: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            found += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return found

    def put(self, key: str, data: bytes) -> None:
        self.put_version(key, data)

    def put_version(self, key: str, data: bytes) -> str | None:
        """Put ``key``; the version id the bucket gave it (None where it keeps no versions)."""
        content_type = "application/json" if key.endswith(".json") else "text/csv"
        res = self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                     ContentType=content_type)  # fmt: skip
        version_id = res.get("VersionId")
        return None if version_id in (None, "null") else str(version_id)

    def delete(self, keys: list[str]) -> None:
        """Delete ``keys``, 1,000 per request (in a versioned bucket: a delete marker each,
        the versions expiring by the lifecycle rule)."""
        self.delete_versions([(key, None) for key in keys])

    def delete_versions(self, objects: list[tuple[str, str | None]]) -> None:
        """Delete each (key, version id), that version for good; a key without a version id
        as ``delete`` does."""
        for i in range(0, len(objects), 1000):
            batch = [{"Key": key} if version is None else {"Key": key, "VersionId": version}
                     for key, version in objects[i : i + 1000]]  # fmt: skip
            failed = self.client.delete_objects(Bucket=self.bucket,
                                                Delete={"Objects": batch, "Quiet": True})  # fmt: skip
            if failed.get("Errors"):
                raise TxnpipeError(f"cannot delete {failed['Errors'][0].get('Key')!r}: "
                                   f"{failed['Errors'][0].get('Message')}")  # fmt: skip

    def keys(self, prefix: str) -> list[str]:
        return list(self.etags(prefix))

    def etags(self, prefix: str) -> dict[str, str]:
        """Every key under ``prefix`` with its ETag (the MD5 of a single-part object)."""
        found: dict[str, str] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            found.update((obj["Key"], obj["ETag"].strip('"')) for obj in page.get("Contents", []))
        return found
