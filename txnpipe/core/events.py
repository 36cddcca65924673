"""S3 put events to chunk references, as S3 sends them (directly or wrapped by SQS/SNS)."""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote_plus

from txnpipe.core.keys import ChunkRef, parse_chunk_key


def s3_keys(event: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(bucket, key) of every ObjectCreated record; test events and other shapes yield none."""
    for record in event.get("Records", []) or []:
        if "body" in record:  # an SQS message carrying the S3 notification
            try:
                inner = json.loads(record["body"])
            except (TypeError, ValueError):
                continue
            if isinstance(inner, dict):
                yield from s3_keys(inner)
            continue
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3", {})
        yield s3.get("bucket", {}).get("name", ""), unquote_plus(s3.get("object", {}).get("key", ""))


def chunk_refs(event: Mapping[str, Any]) -> list[ChunkRef]:
    refs = []
    for _, key in s3_keys(event):
        ref = parse_chunk_key(key)
        if ref is not None:
            refs.append(ref)
    return refs


def is_sweep(event: Mapping[str, Any]) -> bool:
    """The detector's own schedule (an EventBridge scheduled event): sweep every stream."""
    return event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events"


def is_job_state_change(event: Mapping[str, Any]) -> bool:
    return event.get("detail-type") == "Glue Job State Change"
