"""``txnpipe report`` on the folder of a real run, and the page as headless Chromium draws it."""
from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.functional.datasets import dataset
from tests.reference import reference_detections_by_point
from txnpipe.core.rules import CATALOGUE
from txnpipe.local.inputs import InputFiles
from txnpipe.local.runner import RunOptions, run
from txnpipe.tools.cli import main
from txnpipe.tools.report import load_run, reason_category
from txnpipe.tools.status import collect

SECTIONS = ("summary", "detections", "merchants", "latency", "rejects")
PATID2_ORANGE = (1.0, 0x7F / 255, 0x0E / 255)


@pytest.fixture(scope="module")
def run_dir(
    pg_server_url: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """One real run (its own database and bucket) shared by this module's tests."""
    from txnpipe.local import services

    name = f"txnpipe_report_{uuid.uuid4().hex[:12]}"
    bucket = f"txnpipe-report-{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    services.client("s3", s3_endpoint).create_bucket(Bucket=bucket)
    out = tmp_path_factory.mktemp("run")
    ds = dataset()
    try:
        run(RunOptions(InputFiles.check(ds.transactions, ds.importance), out, ds.settings,
                       fast=True, database_url=psycopg.conninfo.make_conninfo(pg_server_url,
                                                                              dbname=name),
                       s3_endpoint=s3_endpoint, bucket=bucket))  # fmt: skip
        yield out
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def report_html(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "--from", str(run_dir), "--out", str(out)]) == 0
    return out / "report.html"


def test_every_detection_is_placed_at_its_evaluation_point(run_dir: Path) -> None:
    ds = dataset()
    points = reference_detections_by_point(
        ds.transactions.read_bytes(), ds.importance.read_bytes(), ds.settings.as_dict()
    )
    data = load_run(run_dir)
    assert data.notes == []  # files, run.json and the manifest agree
    assert data.exact_matches == len(data.detections) == sum(map(len, points))
    placed = Counter((d.chunk, CATALOGUE.label(d.pattern)[0], d.customer, d.merchant)
                     for d in data.detections)
    expected = Counter((k, p, c, m) for k, point in enumerate(points) for p, _, c, m in point)
    assert placed == expected


def test_report_has_every_section_and_its_charts(run_dir: Path, report_html: Path) -> None:
    page = report_html.read_text(encoding="utf-8")
    data = load_run(run_dir)
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    for heading in ("Detections per pattern over the stream", "Merchants and customers",
                    "Per-chunk latency", "Rejects by reason"):  # fmt: skip
        assert heading in page
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert len(images) == 4
    for b64 in images:
        png = base64.b64decode(b64)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<script" not in page
    # The merchants behind the detections and the reject reasons are named.
    top = Counter((d.pattern, d.merchant) for d in data.detections).most_common(1)[0][0]
    assert top[1] in page
    for reject in data.rejects:
        assert html.escape(reason_category(reject.reason)) in page
    assert len(data.rejects) == sum(c.rejects for c in data.chunks) > 0


def test_report_escapes_what_the_data_says(run_dir: Path, tmp_path: Path) -> None:
    """Merchant ids and reject reasons come from the input: they must not become markup."""
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    source = json.loads((folder / "run.json").read_text())["streams"][0]["source"]
    target = next((folder / "detections" / source).glob("detections_*.csv"))
    lines = target.read_text().splitlines()
    fields = lines[1].split(",")
    fields[5] = '"<script>alert(1)</script>"'
    lines[1] = ",".join(fields)
    target.write_text("\n".join(lines) + "\n")
    assert main(["report", "--from", str(folder), "--out", str(tmp_path / "r"),
                 "--top", "1000"]) == 0  # fmt: skip
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_report_of_a_folder_that_is_not_a_run_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {"missing": tmp_path / "nope", "empty": tmp_path / "empty"}
    cases["empty"].mkdir()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    cases["bad run.json"] = bad
    for what, folder in cases.items():
        assert main(["report", "--from", str(folder), "--out", str(tmp_path / "out")]) == 2, what
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a txnpipe run folder" in err, (what, err)
    assert not (tmp_path / "out" / "report.html").exists()


# ----------------------------------------------------------------------------- Chromium


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def screenshot(html: Path, png: Path, profile: Path, height: int = 2400) -> None:
    browser = _chromium()
    assert browser is not None
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={png}",
        f"--window-size=1280,{height}", html.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed "
                    "(Debian: apt-get install -y chromium); CI installs it")  # fmt: skip
def test_report_renders_in_headless_chromium(report_html: Path, tmp_path: Path) -> None:
    import matplotlib.image
    import numpy as np

    png = tmp_path / "report.png"
    screenshot(report_html, png, tmp_path / "profile")
    assert png.stat().st_size > 20_000
    image = matplotlib.image.imread(png)[..., :3]
    assert image.shape[:2] == (2400, 1280)
    rows = {image[y].tobytes() for y in range(0, 2400, 150)}
    assert len(rows) > 8  # not one colour, not one repeated band
    colours = np.unique((image.reshape(-1, 3)[::7] * 255).round().astype(np.uint8), axis=0)
    assert len(colours) > 50
    # The charts were drawn: PatId2's orange is in no text or style, only in the PNGs.
    orange = np.abs(image - np.array(PATID2_ORANGE)).max(axis=-1) < 0.02
    assert orange.sum() > 2_000


def test_patid1_from_a_batch_engine_is_placed_at_its_evaluation_point(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    """A batch engine merges PatId1 late: its rows follow later points' rows in the files and
    run.json does not count them per chunk; their YStartTime still names their point."""
    ds = dataset()
    points = reference_detections_by_point(
        ds.transactions.read_bytes(), ds.importance.read_bytes(), ds.settings.as_dict()
    )
    run(RunOptions(InputFiles.check(ds.transactions, ds.importance), tmp_path, ds.settings,
                   fast=True, database_url=database_url, s3_endpoint=s3_endpoint, bucket=bucket,
                   upgrade_engine="duckdb"))  # fmt: skip
    data = load_run(tmp_path)
    assert data.exact_matches == len(data.detections) == sum(map(len, points))
    placed = Counter((d.chunk, CATALOGUE.label(d.pattern)[0], d.customer, d.merchant)
                     for d in data.detections)
    expected = Counter((k, p, c, m) for k, point in enumerate(points) for p, _, c, m in point)
    assert placed == expected
    assert sum(c.detections for c in data.chunks) < len(data.detections)  # PatId1 not logged
    (s,) = collect(database_url, ds.settings.detection_batch_rows).sources
    assert s.ended and s.upgrade_run is None and s.detections == len(data.detections)
