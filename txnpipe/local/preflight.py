"""Checks of a local run's arguments that need the file system, made before any work starts
(SPEC 5: a one-line error and exit 2, with nothing deleted)."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from txnpipe.core.errors import TxnpipeError
from txnpipe.local.inputs import InputFiles

OUTPUT_PREFIXES = ("chunks/", "detections/", "rejects/")
DB_WAIT_SECONDS = 60.0  # SPEC 5: how long a lost database may take to come back
RUN_LOG = "run.json"
# The files a run writes under DIR/<prefix>/<source>/ (and only those are cleared).
OUTPUT_NAME = re.compile(r"chunk_\d{6,}\.csv|_manifest\.json|detections_\d{6,}\.csv")
_BUCKET = re.compile(r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def check_bucket(name: str) -> None:
    if not _BUCKET.fullmatch(name) or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        raise TxnpipeError(
            f"--bucket {name!r} is not a valid S3 bucket name (3-63 lower-case letters, digits,"
            " '.' and '-', starting and ending with a letter or digit)"
        )


def prepare_out(out: Path, inputs: InputFiles) -> bool:
    """Make sure ``out`` is a directory the run can write, and that no input lies where an
    output will be written; True when the folder was created here (removed again if the
    run fails before it starts)."""
    if out.exists() and not out.is_dir():
        raise TxnpipeError(f"--out {str(out)!r} is a file, not a directory")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".txnpipe-write-test-"):
            pass
    except OSError as exc:
        raise TxnpipeError(f"--out {str(out)!r} is not writable: {exc.strerror or exc}") from None
    for path in (*(s.path for s in inputs.streams), inputs.importance):
        if _is_output(out, path, inputs.sources):
            raise TxnpipeError(
                f"input {str(path)!r} lies where the run writes its outputs in {str(out)!r}; "
                "move it, or choose another --out"
            )
    return created


def _is_output(out: Path, path: Path, sources: tuple[str, ...]) -> bool:
    try:
        relative = path.resolve().relative_to(out.resolve())
    except ValueError:
        return False
    parts = relative.parts
    if parts == (RUN_LOG,):
        return True
    return (len(parts) == 3 and f"{parts[0]}/" in OUTPUT_PREFIXES and parts[1] in sources
            and OUTPUT_NAME.fullmatch(parts[2]) is not None)  # fmt: skip


def clear_outputs(out: Path, sources: tuple[str, ...]) -> None:
    """Remove the last run's outputs of these streams from ``out``: only files named as a
    run names them, so nothing else in the folder (an input, say) is ever touched."""
    for prefix in OUTPUT_PREFIXES:
        for source in sources:
            folder = out / prefix / source
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.is_file() and OUTPUT_NAME.fullmatch(entry.name):
                    entry.unlink()


def remove_if_empty(out: Path) -> None:
    try:
        os.rmdir(out)
    except OSError:
        pass
