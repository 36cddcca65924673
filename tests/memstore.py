"""An in-memory ObjectStore: the seam's contract without S3, for pure tests of the core."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from txnpipe.core.ports import InputChanged, ObjectVersion


@dataclass
class MemoryStore:
    objects: dict[str, bytes] = field(default_factory=dict)
    ranged_bytes: int = 0

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def get_range(
        self, key: str, start: int, length: int, version: ObjectVersion | None = None
    ) -> tuple[bytes, int]:
        data = self.objects[key]
        if version is not None and version != self.version(key):
            raise InputChanged(key)
        part = data[start : start + length]
        self.ranged_bytes += len(part)
        return part, len(data)

    def version(self, key: str) -> ObjectVersion:
        return ObjectVersion(None, hashlib.md5(self.objects[key]).hexdigest())

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list_keys(self, prefix: str, start_after: str = "", limit: int = 1000) -> list[str]:
        keys = sorted(k for k in self.objects if k.startswith(prefix) and k > start_after)
        return keys[:limit]

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data
