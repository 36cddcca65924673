"""Hostile ids and odd files are data, never queries; a header-only file is an empty stream."""
from __future__ import annotations

from pathlib import Path

import psycopg

from tests.conftest import detection_files
from tests.functional.cli_kit import IMPORTANCE, SEED_HEADER, run_fast, write
from tests.reference import reference_detections
from txnpipe.core.settings import Settings

HOSTILE_IDS = [
    '"C""quoted"""',
    "C;1",
    "'; DROP TABLE txnpipe.pairs; --",
    "Robert'); DELETE FROM txnpipe.detections;--",
    "客户-7",
    "Ωmega",
    '"C,comma"',
]


def test_hostile_ids_are_data_not_queries(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    lines = []
    for i, customer in enumerate(HOSTILE_IDS * 3):
        merchant = "Мерчант" if i % 2 else "M'1"
        lines.append(f'{customer},"{merchant}",{i % 5}.5,{"F" if i % 3 else "M"},ty;pe\n')
    lines.insert(5, "C9," + "x" * 100_000 + ",1,F,t\n")  # a 100 KB merchant id: rejected
    lines.insert(7, 'C9,"M\n9",abc,F,t\n')  # a quoted line break, then a bad value
    tx = write(tmp_path, "hostile.csv", SEED_HEADER + "".join(lines))
    imp = write(tmp_path, "imp.csv", IMPORTANCE + "'; DROP TABLE x; --,ty;pe,1\nΩmega,ty;pe,2\n")
    settings = {"chunk_rows": "4", "child_min_txns": "2", "child_max_avg_value": "10",
                "dei_min_female_customers": "1", "dei_max_female_male_ratio": "5",
                "upgrade_min_merchant_txns": "3", "detection_batch_rows": "4"}  # fmt: skip
    sets = [arg for k, v in settings.items() for arg in ("--set", f"{k}={v}")]
    code = run_fast(tmp_path, tx, imp, *sets, "--database-url", database_url,
                "--s3-endpoint", s3_endpoint, "--bucket", bucket)  # fmt: skip
    assert code == 0
    out = tmp_path / "out"
    rejects = (out / "rejects" / "hostile" / "chunk_000001.csv").read_text()
    assert "longer than 1000 bytes" in rejects and "not a finite number" in rejects
    without_long = SEED_HEADER + "".join(lines[:5] + ["C9,M9,-1,F,t\n"] + lines[6:])
    typed = Settings().replace(settings).as_dict()
    expected = reference_detections(without_long.encode(), imp.read_bytes(), typed)
    got = detection_files(out, "hostile")
    assert got == expected and {r[2] for f in got for r in f} >= {"'; DROP TABLE txnpipe.pairs; --"}
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM txnpipe.pairs").fetchone()[0] > 0


def test_header_only_file_is_an_empty_stream(
    tmp_path: Path, database_url: str, s3_endpoint: str, bucket: str
) -> None:
    tx = write(tmp_path, "no_records.csv", SEED_HEADER)
    imp = write(tmp_path, "imp.csv", IMPORTANCE)
    code = run_fast(tmp_path, tx, imp, "--database-url", database_url, "--s3-endpoint", s3_endpoint,
                "--bucket", bucket)  # fmt: skip
    assert code == 0
    manifest = tmp_path / "out" / "chunks" / "no_records" / "_manifest.json"
    assert manifest.read_text() == '{"chunks": 0, "records": 0}'
    assert not (tmp_path / "out" / "detections" / "no_records").exists()


