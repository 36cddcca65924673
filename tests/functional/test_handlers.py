"""The Lambda handlers on the sample events in events/, against moto and real PostgreSQL."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit
from txnpipe import entry
from txnpipe.cli import main
from txnpipe.invoke import invoke_handler
from txnpipe.keys import chunk_key, manifest_key, source_name

EVENTS = Path(__file__).parents[2] / "events"


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, database_url: str, s3_endpoint: str,
               bucket: str) -> Kit:  # fmt: skip
    """The environment CDK gives the functions, pointed at moto and the test database."""
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    env = {
        "TXNPIPE_DATABASE_URL": database_url,
        "TXNPIPE_S3_ENDPOINT": s3_endpoint,
        "TXNPIPE_BUCKET": bucket,
        "TXNPIPE_TRANSACTIONS_KEY": kit.input_key,
        "TXNPIPE_IMPORTANCE_KEY": kit.importance_key,
        "TXNPIPE_RUN_SECONDS": "0",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.update({f"TXNPIPE_{k.upper()}": str(v) for k, v in kit.settings.as_dict().items()})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(entry, "_connection", None)
    entry._s3_client.cache_clear()
    return kit


def _put_event(key: str) -> dict[str, object]:
    event = copy.deepcopy(json.loads((EVENTS / "detector_s3_put.json").read_text()))
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


def test_handlers_on_sample_events_give_the_reference_detections(lambda_env: Kit) -> None:
    schedule = json.loads((EVENTS / "chunker_schedule.json").read_text())
    written: list[int] = []
    while True:
        result = invoke_handler("chunker", schedule)
        written += result["written"]
        if result["done"]:
            break
    assert written == list(range(len(written))) and written
    source = source_name(lambda_env.input_key)
    for k in reversed(written):  # S3 events may arrive in any order
        invoke_handler("detector", _put_event(chunk_key(source, k)))
    result = invoke_handler("detector", _put_event(manifest_key(source)))
    assert result["ended"] == [source]
    assert lambda_env.detection_files() == dataset().expected()


def test_sample_detector_event_names_a_chunk() -> None:
    from txnpipe.events import chunk_refs

    refs = chunk_refs(json.loads((EVENTS / "detector_s3_put.json").read_text()))
    assert [(r.source, r.chunk) for r in refs] == [("bs140513_032310", 0)]


def test_invoke_command_runs_the_chunker(lambda_env: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "chunker", "--event", str(EVENTS / "chunker_schedule.json")]) == 0
    result = json.loads(capsys.readouterr().out)  # interval 0: every chunk is due at once
    assert result["done"] and result["written"] == list(range(24))


def test_invoke_command_names_a_missing_event(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "detector", "--event", "/nonexistent.json"]) == 2
    assert "cannot read event" in capsys.readouterr().err
