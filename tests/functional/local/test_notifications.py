"""A run's entries in a bucket's notification configuration, on moto: added beside other
entries and taken out again; the pause that lets a concurrent writer show itself is taken
only where another writer can exist."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from txnpipe.local import notifications, services

ARN = "arn:aws:sqs:us-east-1:123456789012:txnpipe-chunks-x"
OTHER = {"Id": "someone-else", "QueueArn": ARN, "Events": ["s3:ObjectCreated:*"]}


def _ids(s3: Any, bucket: str) -> list[str]:
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    return sorted(e["Id"] for e in config.get("QueueConfigurations", []))


@pytest.mark.parametrize("private", [False, True])
def test_entries_come_and_go_and_only_a_shared_bucket_waits_for_other_writers(
    s3_endpoint: str, bucket: str, private: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = services.client("s3", s3_endpoint)
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [OTHER]})
    pauses: list[float] = []
    sleep, here = time.sleep, threading.current_thread()

    def record(seconds: float) -> None:  # time.sleep is every thread's: only this one's count
        if threading.current_thread() is here:
            pauses.append(seconds)
        else:
            sleep(seconds)

    monkeypatch.setattr(notifications.time, "sleep", record)

    notifications.subscribe(s3, bucket, ARN, "r1", ["alpha", "beta"], private=private)
    assert _ids(s3, bucket) == ["someone-else", "txnpipe-run-r1-alpha", "txnpipe-run-r1-beta"]
    notifications.unsubscribe(s3, bucket, "r1", private=private)
    assert _ids(s3, bucket) == ["someone-else"]

    if private:
        assert pauses == []
    else:  # one pause after each write: its read-back then finds what it wrote
        assert len(pauses) == 2 and all(p >= notifications._SETTLE for p in pauses)
