"""Property-based: random small streams, chunk sizes and settings against the reference."""
from __future__ import annotations

import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.pipeline_kit import Kit
from tests.reference import reference_chunks, reference_detections
from txnpipe.adapters import pgstore
from txnpipe.settings import Settings

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


@settings(max_examples=100, deadline=None, derandomize=True,  # the same examples in CI
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=streams())
def test_random_streams_equal_the_reference(
    case: tuple[str, str, Settings], tmp_path: Path, database_url: str, s3_endpoint: str,
    bucket: str,
) -> None:  # fmt: skip
    data, importance, chosen = case
    name = f"p{uuid.uuid4().hex[:10]}"  # a new source per example, same database
    tx, imp = tmp_path / f"{name}.csv", tmp_path / f"{name}_imp.csv"
    tx.write_text(data, encoding="utf-8", newline="")
    imp.write_text(importance, encoding="utf-8")
    kit = Kit.upload(s3_endpoint, bucket, database_url, chosen, tx, imp)
    keys = kit.chunk_keys(kit.write_all_chunks())
    assert [kit.store.get(k) for k in keys[:-1]] == reference_chunks(tx.read_bytes(),
                                                                     chosen.chunk_rows)  # fmt: skip
    with pgstore.connect(database_url) as conn:
        kit.deliver(conn, keys[::-1])  # the events in reverse order
    expected = reference_detections(tx.read_bytes(), imp.read_bytes(), chosen.as_dict())
    assert kit.detection_files() == expected
