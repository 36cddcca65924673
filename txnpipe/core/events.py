"""S3 put events, as S3 sends them (directly or wrapped by SQS): chunk references for the
detector, input objects for the chunker."""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from txnpipe.core.errors import TxnpipeError
from txnpipe.core.keys import ChunkRef, parse_chunk_key
from txnpipe.core.ports import ObjectVersion


@dataclass(frozen=True)
class ObjectPut:
    """One object an S3 event says was put, and the version it names (if it names one)."""

    bucket: str
    key: str
    version: ObjectVersion | None


def s3_puts(event: Mapping[str, Any]) -> Iterator[ObjectPut]:
    """Every ObjectCreated record; test events and other shapes yield none."""
    for record in event.get("Records", []) or []:
        if "body" in record:  # an SQS message carrying the S3 notification
            try:
                inner = json.loads(record["body"])
            except (TypeError, ValueError):
                continue
            if isinstance(inner, dict):
                yield from s3_puts(inner)
            continue
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3", {})
        obj = s3.get("object", {})
        etag, version_id = obj.get("eTag"), obj.get("versionId")
        version = ObjectVersion(version_id if version_id not in (None, "", "null") else None,
                                str(etag).strip('"')) if etag else None  # fmt: skip
        yield ObjectPut(s3.get("bucket", {}).get("name", ""), unquote_plus(obj.get("key", "")),
                        version)  # fmt: skip


def chunk_refs(event: Mapping[str, Any]) -> list[ChunkRef]:
    refs = []
    for put in s3_puts(event):
        ref = parse_chunk_key(put.key)
        if ref is not None:
            refs.append(ref)
    return refs


def is_sweep(event: Mapping[str, Any]) -> bool:
    """The detector's own schedule (an EventBridge scheduled event): sweep every stream."""
    return event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events"


def is_job_state_change(event: Mapping[str, Any]) -> bool:
    return event.get("detail-type") == "Glue Job State Change"


def purge_request(event: Mapping[str, Any]) -> str | None:
    """The source a ``{"txnpipe": "purge", "source": NAME}`` event names (invoked by hand:
    docs/deploy.md), else None."""
    if event.get("txnpipe") != "purge":
        return None
    source = event.get("source")
    if not isinstance(source, str) or not source:
        raise TxnpipeError('a purge event names its stream: {"txnpipe": "purge", "source": NAME}')
    return source
