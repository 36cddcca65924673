"""Detections people can react to: one EventBridge event per detection file written.

Source ``txnpipe``, detail type ``Detection file written``, on the stack's own bus. The event
is put after the file; a write that is retried puts it again with the same content, so a
consumer must be idempotent on the file's key (``detail.key``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from txnpipe.core.ports import FileWritten

SOURCE = "txnpipe"
DETAIL_TYPE = "Detection file written"


def detail(bucket: str, event: FileWritten) -> dict[str, Any]:
    return {"stream": event.source, "bucket": bucket, "key": event.key, "rows": event.rows,
            "by_pattern": event.by_pattern}  # fmt: skip


@dataclass(frozen=True)
class EventBridgeEvents:
    client: Any  # boto3 "events"
    bus_name: str
    bucket: str

    def file_written(self, event: FileWritten) -> None:
        """Raises when EventBridge does not take the event, so that the invocation is
        retried (the file is rewritten the same, and the event put again)."""
        entry = {"Source": SOURCE, "DetailType": DETAIL_TYPE, "EventBusName": self.bus_name,
                 "Detail": json.dumps(detail(self.bucket, event), sort_keys=True)}  # fmt: skip
        response = self.client.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            failed = response["Entries"][0]
            raise RuntimeError(f"EventBridge did not take the event of {event.key}: "
                               f"{failed.get('ErrorCode')} {failed.get('ErrorMessage')}")  # fmt: skip
