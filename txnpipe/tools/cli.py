"""The ``txnpipe`` command: parse arguments, call one core function, print the outcome.

A ``TxnpipeError`` (bad arguments or input) becomes one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from txnpipe import __version__
from txnpipe.batch import MEMORY_LIMITS
from txnpipe.core import environment as ENV
from txnpipe.core.errors import TxnpipeError, one_line
from txnpipe.core.settings import Settings
from txnpipe.local.preflight import DB_WAIT_SECONDS


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise TxnpipeError(message)


_SETTINGS_HELP = ("a setting of SPEC 6 (see the README's settings table); may be given "
                  "again; wins over TXNPIPE_<NAME>")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="txnpipe", description="Streaming transaction-pattern detection.",
                     formatter_class=_Help)  # fmt: skip
    parser.add_argument("--version", action="version", version=f"txnpipe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help,
                              formatter_class=_Help)  # fmt: skip

    run = command("run", "run chunker and detector end to end locally (SPEC 5)")
    run.add_argument("--transactions", type=Path, required=True, action="append",
                     metavar="FILE", help="a transactions file; give it again for more streams, "
                     "run side by side (each named by its file name without extension)")  # fmt: skip
    run.add_argument("--importance", type=Path, required=True, metavar="FILE",
                     help="the importance (weights) file")  # fmt: skip
    run.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="where chunks/, detections/, rejects/ and run.json are written")  # fmt: skip
    pace = run.add_mutually_exclusive_group()
    pace.add_argument("--fast", action="store_true", help="no waiting between chunks")
    pace.add_argument("--interval", type=float, metavar="SECONDS",
                      help="seconds between chunks (sets chunk_interval_seconds; SPEC: 7)")  # fmt: skip
    run.add_argument("--chunk-rows", type=int, metavar="N",
                     help="records per chunk (sets chunk_rows; SPEC: 1000)")  # fmt: skip
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="assign",
                     help=_SETTINGS_HELP)  # fmt: skip
    run.add_argument("--database-url", metavar="URL",
                     help="PostgreSQL to keep the state in (default: an embedded server)")  # fmt: skip
    run.add_argument("--pg-data", type=Path, metavar="DIR",
                     help="keep the embedded PostgreSQL's data in DIR (for txnpipe status)")
    run.add_argument("--s3-endpoint", metavar="URL",
                     help="an S3-compatible endpoint (default: moto in this process)")  # fmt: skip
    run.add_argument("--bucket", default="txnpipe-local", metavar="NAME", help="the S3 bucket")
    run.add_argument("--upgrade-engine", choices=("inline", "duckdb", "spark"), default="inline",
                     help="where PatId1's percentiles are computed (inline: per chunk)")
    run.add_argument("--chaos", type=int, metavar="SEED",
                     help="duplicate, reorder, delay and lose events, crash at fault points, "
                          "restart the embedded PostgreSQL; the output must not change")  # fmt: skip
    run.add_argument("--db-wait", type=float, default=DB_WAIT_SECONDS, metavar="SECONDS",
                     help="how long a lost database may take to come back before the run "
                          "fails with exit 1")  # fmt: skip

    gen = command("generate", "write synthetic BankSim-shaped input files")
    gen.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="folder for the transactions and importance files")  # fmt: skip
    gen.add_argument("--rows", type=int, default=594_643, metavar="N", help="records to write")
    gen.add_argument("--seed", type=int, default=7, metavar="S",
                     help="random seed: the same seed writes the same bytes")  # fmt: skip
    gen.add_argument("--layout", choices=("seed", "banksim"), default="banksim",
                     help="the files' layout (SPEC 2.1)")  # fmt: skip

    inv = command("invoke", "run a Lambda handler locally on an event file")
    inv.add_argument("function", choices=("chunker", "detector"), help="the handler to run")
    inv.add_argument("--event", type=Path, required=True, metavar="FILE",
                     help="the event, as JSON (samples in events/)")  # fmt: skip
    inv.add_argument("--database-url", metavar="URL", help=f"sets {ENV.DATABASE_URL}")
    inv.add_argument("--s3-endpoint", metavar="URL", help=f"sets {ENV.S3_ENDPOINT} (moto)")
    inv.add_argument("--bucket", metavar="NAME", help=f"sets {ENV.BUCKET}")

    back = command("backfill", "recompute a finished run's detections and compare (exit 1 "
                               "on a difference, 3 when the engine fails)")  # fmt: skip
    back.add_argument("--from", type=Path, required=True, dest="run_dir", metavar="RUN_DIR",
                      help="the folder a `txnpipe run --out` wrote")  # fmt: skip
    back.add_argument("--importance", type=Path, required=True, metavar="FILE",
                      help="the importance file the run used")  # fmt: skip
    back.add_argument("--source", metavar="NAME", help="the stream, when the run holds several")
    back.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                      help="the batch engine that recomputes")  # fmt: skip
    back.add_argument("--chunk-rows", type=int, metavar="N",
                      help="records per chunk the run used (sets chunk_rows)")  # fmt: skip
    back.add_argument("--memory-limit", metavar="SIZE",
                      help="the engine's working memory, e.g. 2GB: DuckDB spills to disk "
                           "beyond it, Spark's driver heap (default: "
                           + ", ".join(f"{e} {m}" for e, m in MEMORY_LIMITS.items()) + ")")  # fmt: skip
    back.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="assign",
                      help=_SETTINGS_HELP)  # fmt: skip

    stat = command("status", "where every stream in a txnpipe database stands")
    _database_options(stat)
    stat.add_argument("--source", metavar="NAME", help="only this source")
    stat.add_argument("--json", action="store_true", help="machine-readable output")
    stat.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="assign",
                      help="settings (detection_batch_rows counts the rows in files)")  # fmt: skip

    rst = command("restart", "start an ended stream again: from its run folder, or from its "
                             "input in a bucket")  # fmt: skip
    _database_options(rst)
    rst.add_argument("--source", metavar="NAME", required=True, help="the stream")
    where = rst.add_mutually_exclusive_group(required=True)
    where.add_argument("--from", type=Path, dest="run_dir", metavar="RUN_DIR",
                       help="run the stream again as the `txnpipe run` that wrote RUN_DIR ran it "
                            "(its files, settings and engine), replacing its outputs there")  # fmt: skip
    where.add_argument("--bucket", metavar="NAME",
                       help="a deployment's bucket: clear the stream's outputs and register it "
                            "anew from its input there; the chunker takes it up")  # fmt: skip
    rst.add_argument("--s3-endpoint", metavar="URL",
                     help="with --bucket: an S3 endpoint other than AWS's (moto)")  # fmt: skip

    pur = command("purge", "remove an ended stream's history, aggregates and weights from the "
                           "database, keeping its chunk log and detections")  # fmt: skip
    _database_options(pur)
    pur.add_argument("--source", metavar="NAME", required=True, help="the stream")

    qry = command("query", "SQL over a run folder's detections and rejects (the tables the "
                           "stack's Athena workgroup has), printed as CSV")  # fmt: skip
    qry.add_argument("--from", type=Path, required=True, dest="run_dir", metavar="RUN_DIR",
                     help="the folder a `txnpipe run --out` wrote")  # fmt: skip
    qry.add_argument("sql", metavar="SQL",
                     help="a query over the tables detections and rejects (partition column "
                          "source), e.g. \"SELECT count(*) FROM detections WHERE patternId = "
                          "'PatId1'\"")  # fmt: skip

    rep = command("report", "an HTML report of a finished run's folder")
    rep.add_argument("--from", type=Path, required=True, dest="run_dir", metavar="RUN_DIR",
                     help="the folder a `txnpipe run --out` wrote")  # fmt: skip
    rep.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="where report.html is written")  # fmt: skip
    rep.add_argument("--top", type=int, default=10, metavar="N",
                     help="merchants and customers listed per pattern")  # fmt: skip
    rep.add_argument("--source", metavar="NAME",
                     help="the stream to report on, when the run holds several")  # fmt: skip
    return parser


def _database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", metavar="URL", default=os.environ.get(ENV.DATABASE_URL),
                        help=f"the database (default: {ENV.DATABASE_URL})")  # fmt: skip
    parser.add_argument("--pg-data", type=Path, metavar="DIR",
                        help="the embedded PostgreSQL of a `txnpipe run --pg-data DIR` "
                             "(attached to while that run lasts)")  # fmt: skip


@contextmanager
def _database(args: argparse.Namespace) -> Iterator[str]:
    """The URL of ``--database-url``, or of the embedded server of ``--pg-data``."""
    from txnpipe.local import services

    if not args.database_url and not args.pg_data:
        raise TxnpipeError("--database-url (or TXNPIPE_DATABASE_URL) or --pg-data is required")
    if args.pg_data:
        if not (args.pg_data / "PG_VERSION").is_file():
            raise TxnpipeError(f"{str(args.pg_data)!r} holds no PostgreSQL data directory")
        with services.postgres_to_read(args.pg_data) as url:
            yield url
    else:
        yield args.database_url


def _settings(args: argparse.Namespace) -> Settings:
    assign = list(args.assign)
    if args.chunk_rows is not None:
        assign.append(f"chunk_rows={args.chunk_rows}")
    if args.interval is not None:
        assign.append(f"chunk_interval_seconds={args.interval}")
    return Settings.from_sources(os.environ, assign)


def _run(args: argparse.Namespace) -> None:
    from txnpipe.local.display import print_summary, progress_bar
    from txnpipe.local.inputs import InputFiles
    from txnpipe.local.malloc_arenas import cap_arenas
    from txnpipe.local.runner import RunOptions, run

    cap_arenas()  # before any thread starts
    if not 0 < args.db_wait <= 86_400:
        raise TxnpipeError(f"--db-wait must be between 0 and 86400 seconds, got {args.db_wait}")
    opts = RunOptions(
        inputs=InputFiles.check(args.transactions, args.importance),
        out=args.out,
        settings=_settings(args),
        fast=args.fast,
        database_url=args.database_url,
        s3_endpoint=args.s3_endpoint,
        bucket=args.bucket,
        pg_data=args.pg_data,
        chaos=args.chaos,
        upgrade_engine=args.upgrade_engine,
        db_wait_seconds=args.db_wait,
    )
    with progress_bar() as progress:
        summary = run(opts, progress=progress)
    print_summary(summary)


def _generate(args: argparse.Namespace) -> None:
    from txnpipe.tools.generate import generate

    if args.rows < 0:
        raise TxnpipeError("--rows must be >= 0")
    files = generate(args.out, rows=args.rows, seed=args.seed, layout=args.layout)
    print(f"wrote {files.records} records to {files.transactions} and {files.importance}")


def _invoke(args: argparse.Namespace) -> None:
    import json

    from txnpipe.local.invoke import invoke_handler

    try:
        event = json.loads(args.event.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TxnpipeError(f"cannot read event {str(args.event)!r}: {exc}") from None
    overrides = {
        ENV.DATABASE_URL: args.database_url,
        "TXNPIPE_S3_ENDPOINT": args.s3_endpoint,
        ENV.BUCKET: args.bucket,
    }
    os.environ.update({k: v for k, v in overrides.items() if v})
    print(json.dumps(invoke_handler(args.function, event), indent=2, default=str))


def _backfill(args: argparse.Namespace) -> int:
    """Exit 1 when the emitted detection files differ from the recomputed ones (an engine
    that fails raises ``EngineFailed``: exit 3)."""
    from txnpipe.batch.backfill import backfill, report_lines

    assign = list(args.assign)
    if args.chunk_rows is not None:
        assign.append(f"chunk_rows={args.chunk_rows}")
    settings = Settings.from_sources(os.environ, assign)
    report = backfill(args.run_dir, args.importance, settings, args.source, args.engine,
                      memory_limit=args.memory_limit)  # fmt: skip
    print("\n".join(report_lines(report)))
    return 0 if report.identical else 1


def _status(args: argparse.Namespace) -> None:
    from txnpipe.tools.status import collect, print_table

    settings = Settings.from_sources(os.environ, args.assign)
    with _database(args) as database_url:
        report = collect(database_url, settings.detection_batch_rows, args.source)
    if args.json:
        print(report.as_json())
    else:
        print_table(report)


def _restart(args: argparse.Namespace) -> None:
    from txnpipe.tools import restart

    batch_rows = Settings.from_sources(os.environ).detection_batch_rows
    if args.bucket is not None:
        with _database(args) as database_url:
            registration = restart.restart_in_bucket(database_url, args.s3_endpoint, args.bucket,
                                                     args.source, batch_rows)  # fmt: skip
        assert registration.stream is not None
        print(f"stream {args.source!r} registered again from {registration.stream.input_key} "
              f"(restart {registration.stream.restarts}); the chunker starts it on its next tick")
        return
    from txnpipe.local.display import print_summary, progress_bar
    from txnpipe.local.runner import run

    if args.database_url or args.pg_data:  # else the run's own embedded server: a new one
        with _database(args) as url:
            restart.refuse_if_live(url, args.source, batch_rows)
    opts = restart.local_run(args.run_dir, args.source,
                             None if args.pg_data else args.database_url, args.pg_data)  # fmt: skip
    with progress_bar() as progress:
        summary = run(opts, progress=progress)
    print_summary(summary)


def _purge(args: argparse.Namespace) -> None:
    from txnpipe import postgres

    batch_rows = Settings.from_sources(os.environ).detection_batch_rows
    with _database(args) as database_url, postgres.connect(database_url) as conn:
        purged = postgres.purge(conn, args.source, batch_rows)
    if purged.already:
        print(f"stream {args.source!r} was purged already")
    else:
        removed = ", ".join(f"{n:,} {table}" for table, n in purged.removed.items())
        print(f"purged stream {args.source!r}: removed {removed} rows; its chunk log and "
              "detections are kept")  # fmt: skip


def _query(args: argparse.Namespace) -> None:
    from txnpipe.tools.query import query

    query(args.run_dir, args.sql)


def _report(args: argparse.Namespace) -> None:
    from txnpipe.tools.report import write_report

    if args.top < 1:
        raise TxnpipeError("--top must be >= 1")
    path = write_report(args.run_dir, args.out, top=args.top, source=args.source)
    print(f"wrote {path}")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that a run unwinds (and stops what it started)
    as it does on Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        args = _parser().parse_args(argv)
        commands = {
            "run": _run, "generate": _generate, "invoke": _invoke, "backfill": _backfill,
            "status": _status, "restart": _restart, "purge": _purge, "query": _query,
            "report": _report,
        }  # fmt: skip
        status = commands[args.command](args)
    except TxnpipeError as exc:
        print(f"txnpipe: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("txnpipe: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("txnpipe: terminated", file=sys.stderr)
        return 143
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
