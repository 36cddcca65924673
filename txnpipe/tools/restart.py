"""``txnpipe restart --source NAME``: the explicit step that starts an ended stream again
(never a silent reset: a put of its name is refused while the stream is known).

Against a bucket (``--bucket``, a deployment's or any S3 endpoint's): the stream's chunks,
detections and rejects go, its state in the database goes, and it is registered anew from
its input as the bucket holds it now, with the newest importance file; the deployed chunker
takes it up on its next tick. Locally (``--from RUN_DIR``): the stream is run again, as
``txnpipe run`` ran it, from the files, settings and engine its ``run.json`` records, its
outputs in the folder replaced and the other streams' left alone.
"""
from __future__ import annotations

from pathlib import Path

from txnpipe import postgres
from txnpipe.aws.s3store import S3Store
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.settings import Settings
from txnpipe.core.streams import InputPrefixes, Registration, live_refusal
from txnpipe.local import services
from txnpipe.local.bucket import clear_outputs
from txnpipe.local.inputs import InputFiles
from txnpipe.local.run_log import read_run_log
from txnpipe.local.runner import RunOptions


def restart_in_bucket(database_url: str, s3_endpoint: str | None, bucket: str, source: str,
                      batch_rows: int) -> Registration:  # fmt: skip
    store = S3Store(services.client("s3", s3_endpoint), bucket)
    refuse_if_live(database_url, source, batch_rows)
    clear_outputs(store, (source,))  # before the chunker can write the new chunk 0
    with postgres.connect(database_url) as conn:
        return postgres.restart(conn, store, source, InputPrefixes(), batch_rows)


def local_run(run_dir: Path, source: str, database_url: str | None,
              pg_data: Path | None) -> RunOptions:  # fmt: skip
    """The options that run the stream again as its ``run.json`` records it (the run itself
    resets and registers it)."""
    record = next((s for s in read_run_log(run_dir).get("streams", [])
                   if s.get("source") == source), None)  # fmt: skip
    if record is None:
        raise TxnpipeError(f"{str(run_dir / 'run.json')!r} has no stream {source!r}")
    run = record.get("run")
    if not isinstance(run, dict):
        raise TxnpipeError(f"the run of {source!r} in {str(run_dir)!r} recorded no inputs (an "
                           "older txnpipe): run it again with txnpipe run")  # fmt: skip
    settings = Settings(**run["settings"])
    return RunOptions(InputFiles.check([Path(run["transactions"])], Path(run["importance"])),
                      run_dir, settings, fast=bool(run.get("fast")), database_url=database_url,
                      pg_data=pg_data, upgrade_engine=run.get("upgrade_engine", "inline"))  # fmt: skip


def refuse_if_live(database_url: str, source: str, batch_rows: int) -> None:
    """Raises ``TxnpipeError`` when the stream is live in that database (a database that
    never saw it has nothing to refuse)."""
    with postgres.connect(database_url) as conn:
        stream = postgres.PgStreamRegistry(conn).stream(source)
        progress = postgres.PgDetectorState(conn).progress_of(source)
    if stream is None and progress is None:
        return
    reason = live_refusal(source, stream, progress, batch_rows, "restarted")
    if reason is not None:
        raise TxnpipeError(reason)
