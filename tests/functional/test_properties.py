"""Property-based: random small streams, chunk sizes and settings against the reference."""
from __future__ import annotations

import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.pipeline_kit import Kit
from tests.reference import reference_chunks, reference_detections
from txnpipe import postgres
from txnpipe.core.settings import Settings

HEADER = "CustomerId,MerchantId,transaction_value,gender,transaction_type\n"
CUSTOMERS = ["C1", "C2", "'C3'", '"C,4"', "Ω5", " C6 "]
MERCHANTS = ["M1", "M2", '"M""3"']
VALUES = ["1", "5.5", "19.99", "20", "0", "250", "-1", "abc", "1e1"]


@st.composite
def streams(draw: st.DrawFn) -> tuple[str, str, Settings]:
    records = draw(st.lists(st.tuples(
        st.sampled_from(CUSTOMERS), st.sampled_from(MERCHANTS), st.sampled_from(VALUES),
        st.sampled_from(["F", "M", "m", "E", ""]), st.sampled_from(["a", "b"]),
    ), max_size=40))  # fmt: skip
    lines = [",".join(r) + draw(st.sampled_from(["\n", "\r\n"])) for r in records]
    if lines and draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), "\n")  # an empty line: not a record
    if lines and draw(st.booleans()):
        lines[-1] = lines[-1].rstrip("\r\n")  # no line end at the end of the file
    importance = HEADER.split(",")[0] + ",transaction_type,weightage\n" + "".join(
        f"{c},{k},{w}\n" for c, k, w in draw(st.lists(st.tuples(
            st.sampled_from(CUSTOMERS), st.sampled_from(["a", "b"]),
            st.sampled_from(["0.5", "1", "2", "7.25", "nan"])), max_size=8))
    )  # fmt: skip
    chosen = Settings(
        chunk_rows=draw(st.integers(1, 7)),
        detection_batch_rows=draw(st.integers(1, 5)),
        upgrade_min_merchant_txns=draw(st.integers(0, 6)),
        upgrade_count_percentile=draw(st.sampled_from([0.0, 0.5, 0.8, 0.99, 1.0])),
        upgrade_weight_percentile=draw(st.sampled_from([0.0, 0.2, 0.5, 1.0])),
        child_min_txns=draw(st.integers(1, 4)),
        child_max_avg_value=draw(st.sampled_from([5.5, 20.0, 100.0])),
        dei_min_female_customers=draw(st.integers(0, 2)),
        dei_max_female_male_ratio=draw(st.sampled_from([0.5, 1.0, 3.0])),
    )
    return HEADER + "".join(lines), importance, chosen


DERANDOMIZED = settings(deadline=None, derandomize=True,  # the same examples in every run
                        suppress_health_check=[HealthCheck.function_scoped_fixture,
                                               HealthCheck.too_slow])  # fmt: skip


@settings(DERANDOMIZED, max_examples=100)
@given(case=streams())
def test_random_streams_equal_the_reference(
    case: tuple[str, str, Settings], tmp_path: Path, database_url: str, s3_endpoint: str,
    bucket: str,
) -> None:  # fmt: skip
    data, _, chosen = case
    kit, keys = _chunked(case, tmp_path, database_url, s3_endpoint, bucket)
    assert [kit.store.get(k) for k in keys[:-1]] == reference_chunks(data.encode(),
                                                                     chosen.chunk_rows)  # fmt: skip
    with postgres.connect(database_url) as conn:
        kit.deliver(conn, keys[::-1])  # the events in reverse order
    assert kit.detection_files() == reference_detections(data.encode(), case[1].encode(),
                                                         chosen.as_dict())  # fmt: skip


def _chunked(
    case: tuple[str, str, Settings], tmp_path: Path, database_url: str, s3_endpoint: str,
    bucket: str,
) -> tuple[Kit, list[str]]:  # fmt: skip
    """The case's files uploaded as a new source (same database) and chunked."""
    data, importance, chosen = case
    name = f"p{uuid.uuid4().hex[:10]}"
    tx, imp = tmp_path / f"{name}.csv", tmp_path / f"{name}_imp.csv"
    tx.write_text(data, encoding="utf-8", newline="")
    imp.write_text(importance, encoding="utf-8")
    kit = Kit.upload(s3_endpoint, bucket, database_url, chosen, tx, imp)
    return kit, kit.chunk_keys(kit.write_all_chunks())


@st.composite
def upgrade_streams(draw: st.DrawFn) -> tuple[str, str, Settings]:
    """Longer streams over a few merchants and many customers, whose weights differ by kind,
    so PatId1's thresholds rise and fall from one chunk to the next (each evaluation only
    reads what moved since the last one)."""
    customers = [f"C{i}" for i in range(draw(st.integers(3, 15)))]
    records = draw(st.lists(st.tuples(
        st.sampled_from(customers), st.sampled_from(["M1", "M2"]), st.sampled_from(["a", "b", "c"]),
    ), min_size=20, max_size=300))  # fmt: skip
    lines = [f"{c},{m},10,F,{k}\n" for c, m, k in records]
    importance = "CustomerId,transaction_type,weightage\n" + "".join(
        f"{c},{k},{draw(st.sampled_from(['0.5', '1', '2', '3.25']))}\n"
        for c in customers for k in ("a", "b", "c") if draw(st.booleans())
    )
    chosen = Settings(
        chunk_rows=draw(st.integers(1, 8)),
        upgrade_min_merchant_txns=draw(st.integers(0, 10)),
        upgrade_count_percentile=draw(st.sampled_from([0.3, 0.5, 0.75, 0.9])),
        upgrade_weight_percentile=draw(st.sampled_from([0.2, 0.5, 0.8])),
    )
    return HEADER + "".join(lines), importance, chosen


@settings(DERANDOMIZED, max_examples=40)
@given(case=upgrade_streams())
def test_moving_upgrade_thresholds_equal_the_reference(
    case: tuple[str, str, Settings], tmp_path: Path, database_url: str, s3_endpoint: str,
    bucket: str,
) -> None:  # fmt: skip
    data, importance, chosen = case
    kit, keys = _chunked(case, tmp_path, database_url, s3_endpoint, bucket)
    with postgres.connect(database_url) as conn:
        kit.deliver(conn, keys)
    assert kit.detection_files() == reference_detections(data.encode(), importance.encode(),
                                                         chosen.as_dict())  # fmt: skip
