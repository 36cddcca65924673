"""Several streams in one `txnpipe run` (SPEC 5): each stream's outputs are exactly what a run
of its file alone gives: its chunks and rejects byte for byte, its detections row for row (the
times in them are the run's own)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.functional.datasets import dataset
from txnpipe.local.inputs import InputFiles
from txnpipe.local.runner import RunOptions, run

_TIMES = 2  # YStartTime and detectionTime: when the run ran


@pytest.fixture(scope="module")
def three_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path, object]:
    """Three different streams: the generated data, its first half, and its records in
    reverse order (other evaluation points, other detections)."""
    ds = dataset(seed=11)
    folder = tmp_path_factory.mktemp("streams")
    header, *lines = ds.transactions.read_bytes().splitlines(keepends=True)
    files = [ds.transactions]
    for name, body in (("half", lines[: len(lines) // 2]), ("reversed", lines[::-1])):
        path = folder / f"{name}.csv"
        path.write_bytes(header + b"".join(body))
        files.append(path)
    return files, ds.importance, ds.settings


def _outputs(out: Path, source: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for path in sorted(out.glob(f"*/{source}/*")):
        key = str(path.relative_to(out))
        if key.startswith("detections/"):
            rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
            found[key] = [row[_TIMES:] for row in rows[1:]]
        else:
            found[key] = path.read_bytes()
    return found


def _run(files: list[Path], importance: Path, settings: object, out: Path, database_url: str,
         s3_endpoint: str, bucket: str) -> None:  # fmt: skip
    run(RunOptions(InputFiles.check(files, importance), out, settings, fast=True,  # type: ignore[arg-type]
                   database_url=database_url, s3_endpoint=s3_endpoint, bucket=bucket))


@pytest.mark.parametrize("streams", [2, 3])
def test_each_stream_of_a_run_gives_what_its_file_alone_gives(
    three_files: tuple[list[Path], Path, object], streams: int, tmp_path: Path,
    database_url: str, s3_endpoint: str, bucket: str,
) -> None:  # fmt: skip
    files, importance, settings = three_files
    files = files[:streams]
    _run(files, importance, settings, tmp_path / "together", database_url, s3_endpoint, bucket)
    for path in files:
        alone = tmp_path / f"alone-{path.stem}"
        _run([path], importance, settings, alone, database_url, s3_endpoint, bucket)
        expected = _outputs(alone, path.stem)
        assert [k for k in expected if k.startswith("detections/")], path.stem  # it detects
        assert _outputs(tmp_path / "together", path.stem) == expected, path.stem
