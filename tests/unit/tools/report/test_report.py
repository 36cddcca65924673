"""``txnpipe report`` on hand-made run folders: evaluation points, edge cases, bad folders."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from txnpipe.core.detections import HEADER, ist_iso
from txnpipe.core.errors import TxnpipeError
from txnpipe.tools.cli import main
from txnpipe.tools.report import load_run, quantile, reason_category, write_report

T0 = datetime(2026, 11, 29, 3, 0, 0, 123456, tzinfo=UTC)


def _y_start(chunk: int) -> datetime:
    return T0 + timedelta(seconds=7 * chunk, microseconds=789 * chunk)


def make_run(folder: Path, chunks: int, detections: list[tuple[int, str, str, str]],
             rejects: dict[int, list[tuple[int, str]]] | None = None,
             logged: dict[int, int] | None = None) -> Path:  # fmt: skip
    """A run folder: ``detections`` rows (chunk, pattern, customer, merchant) in file order."""
    source = "bank"
    entries = []
    for k in range(chunks):
        y = _y_start(k)
        entries.append({
            "chunk": k,
            "arrived_at": (y - timedelta(milliseconds=40)).isoformat(),
            "y_start": y.isoformat(),
            "applied_at": (y + timedelta(milliseconds=90 + k)).isoformat(),
            "records": 10,
            "rejects": len((rejects or {}).get(k, [])),
            "detections": (logged or {}).get(k, sum(d[0] == k for d in detections)),
        })  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"source": source, "chunks": entries}))
    (folder / "chunks" / source).mkdir(parents=True)
    (folder / "chunks" / source / "_manifest.json").write_text(
        json.dumps({"chunks": chunks, "records": 10 * chunks})
    )
    actions = {"PatId1": "UPGRADE", "PatId2": "CHILD", "PatId3": "DEI-NEEDED"}
    if detections:
        (folder / "detections" / source).mkdir(parents=True)
        lines = [",".join(HEADER)]
        for k, pattern, customer, merchant in detections:
            y = ist_iso(_y_start(k))
            lines.append(f"{y},{y},{pattern},{actions[pattern]},{customer},{merchant}")
        (folder / "detections" / source / "detections_000000.csv").write_text(
            "\n".join(lines) + "\n"
        )
    for k, rows in (rejects or {}).items():
        (folder / "rejects" / source).mkdir(parents=True, exist_ok=True)
        body = "record,reason,line\n" + "".join(f'{r},"{why}",x\n' for r, why in rows)
        (folder / "rejects" / source / f"chunk_{k:06d}.csv").write_text(body)
    return folder


def test_rows_out_of_point_order_are_placed_by_their_ystarttime(tmp_path: Path) -> None:
    """PatId1 merged late by a batch engine: after later points in the file, and not counted
    in run.json's per-chunk detections."""
    rows = [(0, "PatId2", "C1", "M1"), (2, "PatId2", "C2", "M1"), (3, "PatId3", "", "M2"),
            (1, "PatId1", "C3", "M9"), (2, "PatId1", "C4", "M9")]  # fmt: skip
    run = make_run(tmp_path / "run", 4, rows, logged={0: 1, 2: 1, 3: 1})
    data = load_run(run)
    assert [d.chunk for d in data.detections] == [0, 2, 3, 1, 2]
    assert data.exact_matches == 5
    assert any("batch engine" in note for note in data.notes)


def test_a_ystarttime_that_matches_no_chunk_goes_to_the_latest_started_one(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", 3, [(1, "PatId2", "C1", "M1")])
    path = next((run / "detections").rglob("*.csv"))
    late = ist_iso(_y_start(1) + timedelta(seconds=2))
    early = ist_iso(_y_start(0) - timedelta(seconds=1))
    text = path.read_text()
    extra = f"{late},{late},PatId2,CHILD,C2,M1\n{early},{early},PatId2,CHILD,C3,M1\n"
    path.write_text(text + extra)
    data = load_run(run)
    assert [d.chunk for d in data.detections] == [1, 1, None]
    assert len(data.notes) >= 2
    page = (write_report(run, tmp_path / "out")).read_text()
    assert "matches no chunk" in page and "before the first chunk" in page


def test_a_run_without_detections_or_rejects_still_has_every_section(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", 2, [])
    page = write_report(run, tmp_path / "out").read_text()
    assert page.count("data:image/png;base64,") == 4
    for section in ("summary", "detections", "merchants", "latency", "rejects"):
        assert f'<section id="{section}">' in page


def test_rejects_are_grouped_by_reason_without_their_values(tmp_path: Path) -> None:
    rejects = {0: [(3, "value 'abc' is not a finite number"), (5, "empty customer")],
               1: [(12, "value 'NaN' is not a finite number")]}  # fmt: skip
    run = make_run(tmp_path / "run", 2, [], rejects=rejects)
    data = load_run(run)
    assert [(r.chunk, r.record) for r in data.rejects] == [(0, 3), (0, 5), (1, 12)]
    page = write_report(run, tmp_path / "out").read_text()
    assert "value … is not a finite number" in page and "empty customer" in page
    assert reason_category("value '-4.2' is negative") == "value … is negative"
    assert reason_category("expected 10 fields, found 9") == "expected 10 fields, found 9"


def test_quantile_interpolates() -> None:
    assert quantile([], 0.5) is None
    assert quantile([4.0], 0.95) == 4.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


@pytest.mark.parametrize(
    "doc, why",
    [({"chunks": []}, "run.json is unreadable"),
     ({"source": "../x", "chunks": []}, "run.json is unreadable"),
     ({"source": "s", "chunks": [{"chunk": 0}]}, "run.json is unreadable"),
     ({"source": "s", "chunks": [{"chunk": 0, "arrived_at": None, "y_start": "yesterday",
                                  "applied_at": "x", "records": 1, "rejects": 0,
                                  "detections": 0}]}, "run.json is unreadable")],
)  # fmt: skip
def test_a_malformed_run_json_is_one_line_exit_2(
    doc: object, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps(doc))
    assert main(["report", "--from", str(tmp_path / "run"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and why in err


def test_a_file_in_detections_that_is_not_a_detection_file_is_named(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", 1, [(0, "PatId2", "C1", "M1")])
    path = next((run / "detections").rglob("*.csv"))
    path.write_text("a,b\n1,2\n")
    with pytest.raises(TxnpipeError, match="is not a detection file"):
        load_run(run)


def test_report_out_must_be_writable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run", 1, [])
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["report", "--from", str(run), "--out", str(blocker)]) == 2
    assert "cannot write the report" in capsys.readouterr().err
