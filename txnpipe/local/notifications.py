"""S3 -> SQS notifications of one local run's chunks, added to a bucket's configuration.

A bucket has one notification configuration, shared by every run that uses the bucket
(two ``txnpipe run`` on one ``--s3-endpoint`` and ``--bucket``): a run adds one entry per
stream it runs, filtered to that stream's ``chunks/<source>/`` prefix, and takes them out
again when it ends, so it never replaces another run's entries nor receives their events.
S3 offers no conditional write of the configuration, so a run reads it back a moment after
writing and writes again until it finds what it wrote (two runs writing at once converge).
A run's own in-process endpoint has no other writer: there it reads back at once.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from txnpipe.core.errors import TxnpipeError

_ID_PREFIX = "txnpipe-run-"
_ATTEMPTS = 20
_SETTLE = 0.25  # seconds: longer than any writer takes from its read to its write


def _entries(s3: Any, bucket: str) -> list[dict[str, Any]]:
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    return list(config.get("QueueConfigurations", []))


def _put(s3: Any, bucket: str, queues: list[dict[str, Any]]) -> None:
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    config.pop("ResponseMetadata", None)
    config["QueueConfigurations"] = queues
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)


def _prefix(entry: dict[str, Any]) -> str | None:
    for rule in entry.get("Filter", {}).get("Key", {}).get("FilterRules", []):
        if rule.get("Name", "").lower() == "prefix":
            return str(rule.get("Value"))
    return None


def _converge(s3: Any, bucket: str, done: Callable[[list[dict[str, Any]]], bool],
              fix: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
              private: bool) -> None:  # fmt: skip
    """Write the configuration until a read made a while after this writer's last write
    finds it ``done``: another writer that read before that write and wrote after it (so
    with stale entries) writes within the pause, and the next read sees it. A private
    bucket has no other writer to wait for (the pause was 0.25-0.5 s at each end of a run)."""
    for _ in range(_ATTEMPTS):
        current = _entries(s3, bucket)
        if done(current):
            return
        _put(s3, bucket, fix(current))
        if not private:
            time.sleep(_SETTLE + random.uniform(0, _SETTLE))
    raise TxnpipeError(f"cannot update the notification configuration of bucket {bucket!r}")


def subscribe(s3: Any, bucket: str, queue_arn: str, run_id: str, sources: Sequence[str],
              private: bool = False) -> None:  # fmt: skip
    """Add this run's entries. An entry for one of its sources left by a run that died is
    replaced (the caller holds those sources, so no live run can own it). ``private``: no
    other process can reach the endpoint (the run's own)."""
    ours = [
        {
            "Id": f"{_ID_PREFIX}{run_id}-{source}",
            "QueueArn": queue_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"chunks/{source}/"}]}},
        }
        for source in sources
    ]
    prefixes = {f"chunks/{source}/" for source in sources}
    ids = {entry["Id"] for entry in ours}
    _converge(
        s3, bucket,
        done=lambda current: ids <= {e.get("Id") for e in current},
        fix=lambda current: [e for e in current
                             if e.get("Id") not in ids and _prefix(e) not in prefixes] + ours,
        private=private,
    )  # fmt: skip


def unsubscribe(s3: Any, bucket: str, run_id: str, private: bool = False) -> None:
    """Take this run's entries out, leaving every other entry as it is."""

    def mine(entry: dict[str, Any]) -> bool:
        return str(entry.get("Id", "")).startswith(f"{_ID_PREFIX}{run_id}-")

    _converge(
        s3, bucket,
        done=lambda current: not any(mine(e) for e in current),
        fix=lambda current: [e for e in current if not mine(e)],
        private=private,
    )  # fmt: skip
