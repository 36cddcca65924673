"""Backfill check: recompute every detection of a finished stream and compare with its files.

A ``txnpipe run --out`` folder (or a bucket copied with the same keys) holds the chunk files
and the detection files that were emitted. Recomputing from the chunks with a batch engine
(DuckDB by default, Spark too) gives, independently of PostgreSQL and of event delivery,
what the files must hold (SPEC 4.1-4.3). The comparison is per file, on
(patternId, ActionType, customerName, MerchantId): timestamps are not reproducible.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from txnpipe.batch import MEMORY_LIMITS
from txnpipe.core.detections import HEADER, Detection, FileRow, in_files
from txnpipe.core.errors import EngineFailed, TxnpipeError
from txnpipe.core.keys import chunk_key, detections_key, manifest_key
from txnpipe.core.settings import Settings

ENGINES = ("duckdb", "spark")
_DETECTIONS_FILE = re.compile(r"detections_(\d{6,})\.csv")
_NAMED_ERROR = re.compile(r"\b[\w.]*(Error|Exception)\b:")
_SIZE = re.compile(r"(\d+)\s*(MB|GB|MiB|GiB)", re.IGNORECASE)

ChunkFiles = list[tuple[int, Path]]


@dataclass(frozen=True)
class Difference:
    """One detection row that is in one file and not in the other."""

    file: int
    row: FileRow

    @property
    def file_name(self) -> str:
        return f"detections_{self.file:06d}.csv"


@dataclass(frozen=True)
class BackfillReport:
    source: str
    engine: str
    chunks: int
    records: int
    expected: list[list[FileRow]]
    actual: list[list[FileRow]]
    missing: list[Difference]  # recomputed, but absent from the emitted file
    extra: list[Difference]  # emitted, but not recomputed for that file
    misordered: list[int]  # files with the right rows in the wrong order
    seconds: float

    @property
    def identical(self) -> bool:
        return not (self.missing or self.extra or self.misordered)


def find_source(run_dir: Path, source: str | None) -> str:
    """The given source, or the only one under ``chunks/`` when none is given."""
    found = sorted(p.name for p in (run_dir / "chunks").glob("*") if p.is_dir())
    if source is not None:
        if source not in found:
            raise TxnpipeError(f"no chunks for source {source!r} under {run_dir / 'chunks'}")
        return source
    if len(found) != 1:
        listed = ", ".join(found) if found else "none"
        raise TxnpipeError(
            f"--source is needed: {run_dir / 'chunks'} holds {len(found)} sources ({listed})"
        )
    return found[0]


def read_chunks(run_dir: Path, source: str, chunk_rows: int) -> tuple[ChunkFiles, int]:
    """Every chunk file of a finished stream, checked against its manifest; and its records.

    Files are named, not read: an engine reads them as it goes (DuckDB a batch at a time,
    Spark in its executors), so the stream's bytes are never all in memory at once."""
    manifest = run_dir / manifest_key(source)
    if not manifest.is_file():
        raise TxnpipeError(f"{manifest} is missing: the stream has not ended, nothing to check")
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
        total, records = int(info["chunks"]), int(info["records"])
    except (ValueError, KeyError, TypeError):
        raise TxnpipeError(f"{manifest} is not a chunk manifest") from None
    if math.ceil(records / chunk_rows) != total:
        raise TxnpipeError(
            f"the manifest's {total} chunks of {records} records do not fit "
            f"chunk_rows={chunk_rows}; pass the run's --chunk-rows"
        )
    chunks: ChunkFiles = []
    for k in range(total):
        path = run_dir / chunk_key(source, k)
        if not path.is_file():
            raise TxnpipeError(f"chunk file {path} is missing (the manifest lists {total})")
        chunks.append((k, path))
    return chunks, records


def read_detection_files(run_dir: Path, source: str) -> dict[int, list[FileRow]]:
    """The emitted detection files by index, as (patternId, ActionType, customer, merchant)."""
    folder = (run_dir / detections_key(source, 0)).parent
    files: dict[int, list[FileRow]] = {}
    for path in sorted(folder.glob("detections_*.csv")):
        m = _DETECTIONS_FILE.fullmatch(path.name)
        if m is None:
            continue
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
        if not rows or tuple(rows[0]) != HEADER:
            raise TxnpipeError(f"{path} does not start with the header {','.join(HEADER)}")
        bad = [i for i, r in enumerate(rows[1:], 2) if len(r) != len(HEADER)]
        if bad:
            raise TxnpipeError(f"{path} line {bad[0]} does not have {len(HEADER)} fields")
        files[int(m.group(1))] = [(r[2], r[3], r[4], r[5]) for r in rows[1:]]
    return files


def compare(
    expected: list[list[FileRow]], actual: dict[int, list[FileRow]]
) -> tuple[list[Difference], list[Difference], list[int]]:
    """Per file: rows missing from it, rows it should not hold, and whether order differs."""
    missing: list[Difference] = []
    extra: list[Difference] = []
    misordered: list[int] = []
    for b in range(max([len(expected), *(i + 1 for i in actual)])):
        want = expected[b] if b < len(expected) else []
        have = actual.get(b, [])
        lacking, surplus = _beyond(want, have), _beyond(have, want)
        missing += [Difference(b, row) for row in lacking]
        extra += [Difference(b, row) for row in surplus]
        if not lacking and not surplus and want != have:
            misordered.append(b)
    return missing, extra, misordered


def _beyond(rows: list[FileRow], other: list[FileRow]) -> list[FileRow]:
    """Rows of ``rows`` (in their order, duplicates counted) that ``other`` does not match."""
    left = Counter(other)
    out: list[FileRow] = []
    for row in rows:
        if left[row] > 0:
            left[row] -= 1
        else:
            out.append(row)
    return out


def memory_mib(size: str) -> int:
    """A memory size such as ``1GB`` or ``512MiB``, in MiB (decimal and binary units alike:
    an engine's limit, not an accounting figure)."""
    m = _SIZE.fullmatch(size.strip())
    if m is None or int(m.group(1)) == 0:
        raise TxnpipeError(f"memory limit {size!r} is not a size such as 512MB or 2GB")
    return int(m.group(1)) * (1024 if m.group(2).upper().startswith("G") else 1)


def recompute(chunks: ChunkFiles, importance: bytes, settings: Settings, engine: str,
              memory_limit: str | None = None) -> list[Detection]:  # fmt: skip
    """Every detection at its first point, by the chosen engine.

    An engine that fails (out of memory, out of disk, a lost worker) raises ``EngineFailed``
    with its reason on one line: a failure to compute, never "a difference found". For
    DuckDB the chunk files are parsed in worker processes and the weights, parsed here, are
    joined as a table and dropped (at 10x they are about 0.5 GB of Python objects); Spark
    joins them as a table in its executors."""
    if engine not in ENGINES:
        raise TxnpipeError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    mib = memory_mib(memory_limit or MEMORY_LIMITS[engine])
    if not chunks:
        return []
    try:
        if engine == "duckdb":
            from txnpipe.batch import duckdb_engine
            from txnpipe.batch.parallel_parse import keyed_tables

            keyed, weights = keyed_tables(chunks, importance, settings.chunk_rows)
            return duckdb_engine.detections(keyed, settings, memory_limit=f"{mib}MiB",
                                            weights=weights)  # fmt: skip
        from txnpipe.batch import spark_engine

        spark = spark_engine.local_session(driver_memory=f"{mib}m")
        pattern = chunks[0][1].parent.resolve().as_uri() + "/chunk_*.csv"
        files = spark_engine.read_chunk_files(spark, pattern, 0, len(chunks) - 1)
        weights = spark_engine.Importance.of_bytes(spark, importance)
        frame = spark_engine.transactions_from_rdd(spark, files, weights, settings.chunk_rows)
        return spark_engine.detections(spark, frame, settings)
    except (TxnpipeError, KeyboardInterrupt):
        raise
    except Exception as exc:  # whatever the engine raises: DuckDB's, Py4J's, MemoryError
        raise EngineFailed(f"the {engine} engine failed: {engine_reason(exc)}") from exc


def engine_reason(exc: BaseException) -> str:
    """The line of an engine's error that names it (a JVM's trace runs to hundreds)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if _NAMED_ERROR.search(line)]
    reason = (named or lines or [type(exc).__name__])[0]
    return reason if len(reason) <= 300 else reason[:297] + "..."


def backfill(
    run_dir: Path,
    importance: Path,
    settings: Settings,
    source: str | None = None,
    engine: str = "duckdb",
    clock: Callable[[], float] = time.monotonic,
    memory_limit: str | None = None,
) -> BackfillReport:
    started = clock()
    if not run_dir.is_dir():
        raise TxnpipeError(f"--from {run_dir} is not a folder")
    try:
        importance_file = importance.read_bytes()
    except OSError as exc:
        raise TxnpipeError(f"cannot read --importance {importance}: {exc.strerror}") from None
    name = find_source(run_dir, source)
    chunks, records = read_chunks(run_dir, name, settings.chunk_rows)
    expected = in_files(
        recompute(chunks, importance_file, settings, engine, memory_limit),
        settings.detection_batch_rows,
    )
    actual = read_detection_files(run_dir, name)
    missing, extra, misordered = compare(expected, actual)
    return BackfillReport(
        source=name, engine=engine, chunks=len(chunks), records=records, expected=expected,
        actual=[actual[i] for i in sorted(actual)], missing=missing, extra=extra,
        misordered=misordered, seconds=clock() - started,
    )  # fmt: skip


def report_lines(report: BackfillReport, limit: int = 50) -> list[str]:
    """What the CLI prints: a summary, then each difference with its file."""
    rows = sum(len(f) for f in report.expected)
    lines = [
        (
            f"backfill {report.source}: {report.chunks} chunks, {report.records} records, "
            f"{rows} detections in {len(report.expected)} files recomputed with "
            f"{report.engine} in {report.seconds:.1f}s"
        )
    ]
    if report.identical:
        lines.append(f"identical: all {len(report.actual)} detection files match")
        return lines
    for label, found in (("missing", report.missing), ("extra", report.extra)):
        for d in found[:limit]:
            lines.append(f"{label} in {d.file_name}: {','.join(d.row)}")
        if len(found) > limit:
            lines.append(f"... and {len(found) - limit} more {label}")
    for b in report.misordered:
        lines.append(f"misordered: detections_{b:06d}.csv holds the right rows in the wrong order")
    lines.append(
        f"DIFFERENT: {len(report.missing)} missing, {len(report.extra)} extra, "
        f"{len(report.misordered)} misordered file(s)"
    )
    return lines
