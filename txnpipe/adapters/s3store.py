"""S3 behind the ObjectStore seam; the boto3 client is injected (moto locally, AWS in Lambda)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


@dataclass(frozen=True)
class S3Store:
    client: Any
    bucket: str

    def get(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def get_range(self, key: str, start: int, length: int) -> tuple[bytes, int]:
        try:
            res = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidRange":
                raise
            size = self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
            return b"", int(size)
        data: bytes = res["Body"].read()
        content_range = res.get("ContentRange")
        size = int(content_range.rsplit("/", 1)[1]) if content_range else len(data)
        return data, size

    def put(self, key: str, data: bytes) -> None:
        content_type = "application/json" if key.endswith(".json") else "text/csv"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

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
