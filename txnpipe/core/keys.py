"""S3 key layout (SPEC 3 and 4.3) and the source name that every key is built from."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from txnpipe.core.errors import TxnpipeError

CHUNKS_PREFIX = "chunks/"
_SOURCE = re.compile(r"[\w][\w.-]*")
_CHUNK_KEY = re.compile(r"chunks/([^/]+)/chunk_(\d{6,})\.csv")
_MANIFEST_KEY = re.compile(r"chunks/([^/]+)/_manifest\.json")


def source_name(filename: str) -> str:
    """The file's name without extension, refused if it could step outside its prefix."""
    stem = PurePosixPath(filename.replace("\\", "/")).name.rsplit(".", 1)[0]
    if not _SOURCE.fullmatch(stem) or stem.strip(".") == "":
        raise TxnpipeError(
            f"source name {stem!r} (from {filename!r}) must be letters, digits, '_', '-' or '.'"
        )
    return stem


def chunks_folder(source: str) -> str:
    return f"{CHUNKS_PREFIX}{source}/"


def chunk_key(source: str, chunk: int) -> str:
    return f"{chunks_folder(source)}chunk_{chunk:06d}.csv"


def manifest_key(source: str) -> str:
    return f"{chunks_folder(source)}_manifest.json"


def detections_key(source: str, index: int) -> str:
    return f"detections/{source}/detections_{index:06d}.csv"


def rejects_key(source: str, chunk: int) -> str:
    return f"rejects/{source}/chunk_{chunk:06d}.csv"


@dataclass(frozen=True)
class ChunkRef:
    source: str
    chunk: int | None  # None: the manifest

    @property
    def is_manifest(self) -> bool:
        return self.chunk is None


def parse_chunk_key(key: str) -> ChunkRef | None:
    """What an S3 event's key names, or None for a key the detector has no business with."""
    if m := _CHUNK_KEY.fullmatch(key):
        return ChunkRef(m.group(1), int(m.group(2)))
    if m := _MANIFEST_KEY.fullmatch(key):
        return ChunkRef(m.group(1), None)
    return None
