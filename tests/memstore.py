"""An in-memory ObjectStore: the seam's contract without S3, for pure tests of the core."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MemoryStore:
    objects: dict[str, bytes] = field(default_factory=dict)
    ranged_bytes: int = 0

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def get_range(self, key: str, start: int, length: int) -> tuple[bytes, int]:
        data = self.objects[key]
        part = data[start : start + length]
        self.ranged_bytes += len(part)
        return part, len(data)

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data
