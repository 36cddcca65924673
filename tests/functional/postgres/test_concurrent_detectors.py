"""Concurrent detectors never deadlock (issue 14, case 9): eight ``txnpipe invoke detector``
processes at once, on multi-record events that overlap in different orders, as Lambda's
concurrent invocations would receive them."""
from __future__ import annotations

import json
import os
import random
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import psycopg

from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit, s3_event
from tests.functional.txnpipe_process import COMMAND
from tests.reference import reference_detections
from txnpipe import postgres
from txnpipe.local import services

PROCESSES = 8


def test_eight_detector_processes_on_overlapping_events_all_succeed(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    settings = replace(ds.settings, chunk_rows=100)  # 120 chunks: long, overlapping events
    kit = Kit.upload(s3_endpoint, bucket, database_url, settings, ds.transactions, ds.importance)
    kit.register()
    keys = kit.chunk_keys(kit.write_all_chunks())
    rng = random.Random(14)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": services.LOCAL_KEY,
        "AWS_SECRET_ACCESS_KEY": services.LOCAL_KEY,
        "AWS_DEFAULT_REGION": services.REGION,
        **{f"TXNPIPE_{k.upper()}": str(v) for k, v in kit.settings.as_dict().items()},
    }
    processes = []
    for i in range(PROCESSES):
        chosen = rng.sample(keys, k=len(keys) * 3 // 4)  # overlapping, each in its own order
        event = tmp_path / f"event_{i}.json"
        event.write_text(json.dumps(s3_event(bucket, *chosen)))
        processes.append(subprocess.Popen(
            [*COMMAND, "invoke", "detector", "--event", str(event), "--database-url",
             database_url, "--s3-endpoint", s3_endpoint, "--bucket", bucket],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    results = [p.communicate(timeout=300) for p in processes]
    failed = [err for p, (_, err) in zip(processes, results) if p.returncode != 0]
    assert not failed, failed[0][-2000:]
    assert all("Deadlock" not in err for _, err in results)
    with psycopg.connect(database_url, autocommit=True) as conn:
        kit.deliver(conn, keys)  # every event once more, as retries would: changes nothing
        applied = conn.execute("SELECT next_chunk, total_chunks FROM txnpipe.detector_state")
        assert applied.fetchone() == (len(keys) - 1, len(keys) - 1)
    expected = reference_detections(ds.transactions.read_bytes(), ds.importance.read_bytes(),
                                    settings.as_dict())  # fmt: skip
    assert kit.detection_files() == expected


def test_arrivals_recorded_at_once_in_opposite_orders_do_not_deadlock(database_url: str) -> None:
    """The statement that failed: two detectors recording the same landed chunks at the same
    moment, one event listing them forwards and the other backwards."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        postgres.connect(database_url).close()
        sid = postgres.source_id(conn, "s")
        conn.execute("INSERT INTO txnpipe.detector_state (source_id) VALUES (%s)", (sid,))
    chunks = list(range(20_000))
    for _ in range(3):
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def record(order: list[int], start: threading.Barrier, errors: list[BaseException]) -> None:
            with postgres.connect(database_url) as conn:
                state = postgres.PgDetectorState(conn)
                start.wait()
                try:
                    state.record_arrivals("s", order)
                except psycopg.Error as exc:
                    errors.append(exc)

        threads = [threading.Thread(target=record, args=(order, start, errors))
                   for order in (chunks, chunks[::-1])]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with psycopg.connect(database_url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM txnpipe.arrivals").fetchone() == (20_000,)
            conn.execute("DELETE FROM txnpipe.arrivals")
