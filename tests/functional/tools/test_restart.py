"""``txnpipe restart``: the explicit step that starts an ended stream again, locally from its
run folder and against a bucket as a deployment would; refused while the stream is live."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.functional.cli_kit import IMPORTANCE, SEED_HEADER, write
from tests.functional.datasets import dataset
from tests.functional.pipeline_kit import Kit
from txnpipe import postgres
from txnpipe.core.errors import TxnpipeError
from txnpipe.tools.cli import main
from txnpipe.tools.restart import restart_in_bucket
from txnpipe.tools.status import collect


def _outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.csv"))}


def test_restart_runs_an_ended_stream_again_from_its_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On what `make demo` leaves (a run folder and its --pg-data): the stream is run again
    as it was, its outputs replaced, the other stream's left alone."""
    rows = "".join(f"C{i},M{i % 3},{5 + i % 7},{'MF'[i % 2]},t\n" for i in range(400))
    a = write(tmp_path, "bank_a.csv", SEED_HEADER + rows)
    b = write(tmp_path, "bank_b.csv", SEED_HEADER + rows[: len(rows) // 2])
    imp = write(tmp_path, "imp.csv", IMPORTANCE + "C1,t,1\n")
    out, pg = tmp_path / "out", tmp_path / "pgdata"
    assert main(["run", "--transactions", str(a), "--transactions", str(b), "--importance",
                 str(imp), "--out", str(out), "--fast", "--chunk-rows", "50",
                 "--pg-data", str(pg)]) == 0  # fmt: skip
    before = _outputs(out)
    run_log = json.loads((out / "run.json").read_text())
    assert [s["source"] for s in run_log["streams"]] == ["bank_a", "bank_b"]
    (out / "chunks" / "bank_a" / "chunk_000000.csv").write_text("damaged\n")
    assert main(["restart", "--source", "bank_a", "--from", str(out), "--pg-data", str(pg)]) == 0
    assert _outputs(out) == before  # the same stream again: the same files, bank_b's untouched
    after = json.loads((out / "run.json").read_text())
    assert [s["source"] for s in after["streams"]] == ["bank_a", "bank_b"]
    assert after["streams"][1] == run_log["streams"][1]
    capsys.readouterr()
    assert main(["status", "--pg-data", str(pg), "--json"]) == 0
    states = {s["source"]: s["state"] for s in json.loads(capsys.readouterr().out)["sources"]}
    assert states == {"bank_a": "ended", "bank_b": "ended"}
    assert main(["restart", "--source", "nope", "--from", str(out)]) == 2
    assert "has no stream 'nope'" in capsys.readouterr().err


def test_restart_against_a_bucket_registers_the_stream_anew_and_refuses_a_live_one(
    database_url: str, s3_endpoint: str, bucket: str
) -> None:
    ds = dataset()
    kit = Kit.upload(s3_endpoint, bucket, database_url, ds.settings, ds.transactions, ds.importance)
    kit.register()
    with postgres.connect(database_url) as conn:
        kit.deliver(conn, kit.chunk_keys(kit.write_all_chunks()))
    assert kit.detection_files() == ds.expected()
    batch = kit.settings.detection_batch_rows
    registration = restart_in_bucket(database_url, s3_endpoint, bucket, kit.source, batch)
    assert registration.outcome == "registered" and registration.stream is not None
    assert registration.stream.restarts == 1
    for prefix in ("chunks", "detections", "rejects"):  # the last outputs are gone
        assert kit.store.keys(f"{prefix}/{kit.source}/") == []
    (status,) = collect(database_url).sources
    assert status.state == "not started" and status.restarts == 1
    keys = kit.chunk_keys(kit.write_all_chunks())  # the chunker's ticks, anew
    with postgres.connect(database_url) as conn:
        kit.deliver(conn, keys[:1])
        with pytest.raises(TxnpipeError, match=r"is live \(1 chunks applied"):
            restart_in_bucket(database_url, s3_endpoint, bucket, kit.source, batch)
        kit.deliver(conn, keys[1:])  # it runs to the same end
    assert kit.detection_files() == ds.expected()
