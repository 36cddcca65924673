from __future__ import annotations

import json

import pytest

from txnpipe.core.errors import TxnpipeError
from txnpipe.core.events import chunk_refs
from txnpipe.core.keys import ChunkRef, chunk_key, parse_chunk_key, source_name


def test_source_is_the_file_name_without_extension() -> None:
    assert source_name("data/bs140513_032310.csv") == "bs140513_032310"
    assert source_name("../x.csv") == "x"
    assert chunk_key("s", 7) == "chunks/s/chunk_000007.csv"


@pytest.mark.parametrize("name", ["..csv", ".csv", "a b.csv", "a;drop.csv", "x'y.csv"])
def test_source_names_that_could_escape_or_inject_are_refused(name: str) -> None:
    with pytest.raises(TxnpipeError, match="source name"):
        source_name(name)


def test_keys_the_detector_cares_about() -> None:
    assert parse_chunk_key("chunks/s/chunk_000012.csv") == ChunkRef("s", 12)
    assert parse_chunk_key("chunks/s/_manifest.json") == ChunkRef("s", None)
    assert parse_chunk_key("detections/s/detections_000000.csv") is None
    assert parse_chunk_key("chunks/../x/chunk_000001.csv") is None


def _s3_event(*keys: str) -> dict[str, object]:
    return {"Records": [{"eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": "b"}, "object": {"key": k}}} for k in keys]}  # fmt: skip


def test_url_encoded_keys_and_sqs_wrapping() -> None:
    event = _s3_event("chunks%2Fs%2Fchunk_000001.csv", "chunks/s/_manifest.json", "other/x")
    assert chunk_refs(event) == [ChunkRef("s", 1), ChunkRef("s", None)]
    wrapped = {"Records": [{"body": json.dumps(event)}, {"body": json.dumps({"Event": "s3:TestEvent"})}]}
    assert chunk_refs(wrapped) == [ChunkRef("s", 1), ChunkRef("s", None)]

