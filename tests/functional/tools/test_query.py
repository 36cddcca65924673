"""``txnpipe query``: the same SQL as Athena's, over a run folder's files, through DuckDB."""
from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import detection_files
from tests.functional.cli_kit import IMPORTANCE, SEED_HEADER, write
from txnpipe.tools.cli import main


@pytest.fixture(scope="module")
def two_streams(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of two small streams, one of them with a reject, on the embedded defaults."""
    folder = tmp_path_factory.mktemp("query")
    rows = "".join(f"C{i},M1,{5 + i % 3},M,t\n" for i in range(20)) + "C1,M1,50,M,t\n" * 10
    a = write(folder, "bank_a.csv", SEED_HEADER + rows)
    b = write(folder, "bank_b.csv", SEED_HEADER + rows + "C1,M1,not a number,M,t\n")
    imp = write(folder, "imp.csv", IMPORTANCE + "C1,t,1\n")
    assert main(["run", "--transactions", str(a), "--transactions", str(b), "--importance",
                 str(imp), "--out", str(folder / "out"), "--fast",
                 "--set", "upgrade_min_merchant_txns=5"]) == 0  # fmt: skip
    return folder / "out"


def _query(run_dir: Path, sql: str, capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    capsys.readouterr()
    assert main(["query", "--from", str(run_dir), sql]) == 0
    return list(csv.reader(io.StringIO(capsys.readouterr().out)))


def test_detections_and_rejects_are_tables_partitioned_by_source(
    two_streams: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    got = _query(two_streams, "SELECT source, patternId, count(*) AS n FROM detections "
                 "GROUP BY ALL ORDER BY ALL", capsys)  # fmt: skip
    assert got[0] == ["source", "patternId", "n"]
    expected = Counter()
    for source in ("bank_a", "bank_b"):
        for batch in detection_files(two_streams, source):
            expected.update((source, row[0]) for row in batch)
    assert {(s, p): int(n) for s, p, n in got[1:]} == expected and expected
    (header, *rejects) = _query(two_streams, "SELECT source, record, reason FROM rejects", capsys)
    assert header == ["source", "record", "reason"]
    assert [r[:2] for r in rejects] == [["bank_b", "30"]]  # the 31st record, from 0


def test_a_streams_upgrade_detections_with_the_query_docs_deploy_md_shows(
    two_streams: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = (Path(__file__).parents[3] / "docs" / "deploy.md").read_text()
    sql = docs.split("```sql\n", 1)[1].split("```", 1)[0].replace("bs140513_032310", "bank_a")
    got = _query(two_streams, sql, capsys)
    assert got[0] == ["YStartTime", "detectionTime", "customerName", "MerchantId"]
    upgrade = [row for batch in detection_files(two_streams, "bank_a") for row in batch
               if row[1] == "UPGRADE"]  # fmt: skip
    assert sorted((r[2], r[3]) for r in got[1:]) == sorted((c, m) for _, _, c, m in upgrade)
    assert upgrade  # C1: the most transactions at M1, and the lowest weight


def test_a_bad_query_or_folder_is_a_one_line_error(
    two_streams: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "--from", str(two_streams), "SELECT nope FROM detections"]) == 2
    assert "query failed" in capsys.readouterr().err
    assert main(["query", "--from", str(tmp_path), "SELECT 1"]) == 2
    assert "no run folder" in capsys.readouterr().err
