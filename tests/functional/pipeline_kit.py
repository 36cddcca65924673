"""Drive the two mechanisms directly (no runner), so tests can control event delivery."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from txnpipe import postgres
from txnpipe.aws.s3store import S3Store
from txnpipe.core.chunker import RangeReader, run_tick
from txnpipe.core.detector import Detector
from txnpipe.core.events import chunk_refs
from txnpipe.core.keys import chunk_key, manifest_key, source_name
from txnpipe.core.ports import Fault, no_fault
from txnpipe.core.settings import Settings
from txnpipe.core.streams import InputPrefixes, register_input
from txnpipe.local import services


def s3_event(bucket: str, *keys: str) -> dict[str, Any]:
    """An S3 ObjectCreated:Put notification as S3 sends it (keys URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": k.replace("/", "%2F")}},
            }
            for k in keys
        ]
    }


@dataclass
class Kit:
    store: S3Store
    database_url: str
    settings: Settings
    source: str
    input_key: str
    importance_key: str
    held: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def upload(
        cls, endpoint: str, bucket: str, database_url: str, settings: Settings,
        transactions: Path, importance: Path,
    ) -> Kit:  # fmt: skip
        s3 = services.client("s3", endpoint)
        store = S3Store(s3, bucket)
        input_key = f"inputs/transactions/{transactions.name}"
        importance_key = f"inputs/importance/{importance.name}"
        store.put(input_key, transactions.read_bytes())
        store.put(importance_key, importance.read_bytes())
        settings = replace(settings, chunk_interval_seconds=0.0)
        return cls(store, database_url, settings, source_name(transactions.name),
                   input_key, importance_key)  # fmt: skip

    def register(self) -> None:
        """Register the stream as its input's put event does (the deployed detector reads
        its importance file from the registry)."""
        with postgres.connect(self.database_url) as conn:
            registration = register_input(self.store, postgres.PgStreamRegistry(conn),
                                          self.input_key, None, InputPrefixes())  # fmt: skip
        assert registration.outcome == "registered", registration

    def write_all_chunks(self, fault: Fault = no_fault) -> int:
        with postgres.connect(self.database_url) as conn:
            state = postgres.PgChunkerState(conn)
            reader = RangeReader(self.store)
            while not run_tick(self.store, state, self.settings, self.source, self.input_key,
                               fault=fault, reader=reader).done:  # fmt: skip
                pass
            pointer = state.load(self.source)
            assert pointer is not None
            return pointer.next_chunk

    def chunk_keys(self, chunks: int) -> list[str]:
        return [chunk_key(self.source, k) for k in range(chunks)] + [manifest_key(self.source)]

    def detector(self, conn: psycopg.Connection, fault: Fault = no_fault) -> Detector:
        return Detector(self.store, postgres.PgDetectorState(conn), self.settings,
                        self.importance_key, fault=fault)  # fmt: skip

    def hold(self, keys: list[str]) -> None:
        """Take written objects out of the bucket until ``deliver`` names them: as if each
        landed just when its event comes (the detector finds landed chunks by itself)."""
        for key in keys:
            self.held[key] = self.store.get(key)
            self.store.client.delete_object(Bucket=self.store.bucket, Key=key)

    def deliver(self, conn: psycopg.Connection, keys: list[str], fault: Fault = no_fault) -> None:
        for key in keys:
            if key in self.held:
                self.store.put(key, self.held.pop(key))
        self.detector(conn, fault).handle(chunk_refs(s3_event(self.store.bucket, *keys)))

    def detection_files(self) -> list[list[tuple[str, str, str, str]]]:
        files = []
        keys = sorted(self.store.keys(f"detections/{self.source}/"))
        for i, key in enumerate(keys):
            assert key.endswith(f"detections_{i:06d}.csv")
            rows = list(csv.reader(io.StringIO(self.store.get(key).decode(), newline="")))
            files.append([(r[2], r[3], r[4], r[5]) for r in rows[1:]])
        return files
