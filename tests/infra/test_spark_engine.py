"""``txnpipe:upgradeEngine=spark``: what makes the Glue engine deployable.

Only this engine deploys the Glue job, its role, KMS key, security configuration, state-change
rule and VPC endpoint (the inline engine has none of them: test_least_privilege.py). The job
gets the core package through ``--extra-py-files`` (a reproducible zip asset that its role may
read), the detector is told to use the job, and only then does its bundle carry pyarrow (the
bundle itself is measured by the slow test in test_bundling.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions

from infra import bundling
from infra.heavy_aggregation import TERMINAL_STATES
from tests.infra.synth import REPO, Synth, synthesize
from tests.infra.test_stack import (
    as_list,
    by_sid,
    get_att,
    logical_id,
    objects_arn,
    ref,
    statements,
)

Match = assertions.Match

JOB_NAME = "TxnPipe-upgrade-percentiles"
REQUIRED_MODULES = ("txnpipe/__init__.py", "txnpipe/batch/spark_engine.py", "txnpipe/core/weights.py")


@pytest.fixture(scope="module")
def spark_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """cdk.json's context with the spark engine, cdk-nag on, bundling skipped."""
    result = synthesize(tmp_path_factory.mktemp("cdk-spark"), nag=True, upgradeEngine="spark")
    assert result.error is None, f"synth failed: {result.error}\n{result.violations()}"
    return result


def glue_job(synth: Synth) -> dict[str, Any]:
    (job,) = synth.of_type("AWS::Glue::Job").values()
    return job["Properties"]


def staged_libraries(synth: Synth) -> Path:
    return synth.outdir / f"asset.{synth.stack.heavy_aggregation.libraries.asset_hash}.zip"


# -- the Glue job ---------------------------------------------------------------------------


def test_spark_variant_passes_nag(spark_synth: Synth) -> None:
    assert spark_synth.violations() == []


def test_glue_job(spark_synth: Synth) -> None:
    props = glue_job(spark_synth)
    assert props["GlueVersion"] == "5.0"
    assert props["Command"]["Name"] == "glueetl"
    assert props["Command"]["PythonVersion"] == "3"
    assert props["Name"] == JOB_NAME
    assert "SecurityConfiguration" in props
    # The script is the S3 asset of glue_jobs/upgrade_percentiles.py.
    script = spark_synth.stack.heavy_aggregation.script
    location = json.dumps(props["Command"]["ScriptLocation"])
    assert script.asset_hash in location
    staged = spark_synth.outdir / f"asset.{script.asset_hash}.py"
    assert staged.read_bytes() == (REPO / "glue_jobs" / "upgrade_percentiles.py").read_bytes()
    args = props["DefaultArguments"]
    assert args["--txnpipe_output_prefix"] == "glue/"
    # each run names its stream's importance file: none is fixed at deploy time
    assert "--txnpipe_importance_key" not in args
    assert "GlueJobName" in spark_synth.template_json["Outputs"]


def test_glue_state_changes_go_to_the_detector(spark_synth: Synth) -> None:
    spark_synth.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {
                    "jobName": [JOB_NAME],
                    "state": Match.array_with(["SUCCEEDED", "FAILED"]),
                },
            },
            "Targets": [
                Match.object_like(
                    {
                        "Arn": get_att("DetectorFunction", "Arn"),
                        "DeadLetterConfig": {
                            "Arn": get_att(
                                logical_id(
                                    spark_synth, spark_synth.stack.detector.dead_letter_queue
                                ),
                                "Arn",
                            )
                        },
                    }
                )
            ],
        },
    )


def test_glue_role_reads_chunks_importance_and_glue_and_writes_glue(spark_synth: Synth) -> None:
    stack = spark_synth.stack
    bucket = logical_id(spark_synth, stack.storage.bucket)
    found = statements(spark_synth, stack.heavy_aggregation.role)
    read = by_sid(found, "ReadChunksAndImportance")
    assert sorted(map(json.dumps, read["Resource"])) == sorted(
        json.dumps(objects_arn(bucket, p)) for p in ("chunks/", "inputs/importance/", "glue/")
    )
    listing = by_sid(found, "ListOwnPrefixes")
    assert listing["Condition"] == {
        "StringLike": {"s3:prefix": ["chunks/*", "inputs/importance/*", "glue/*"]}
    }
    # never the transactions, nor the whole inputs prefix
    assert "inputs/transactions/" not in json.dumps(found)
    assert json.dumps(objects_arn(bucket, "inputs/")) not in json.dumps(found)
    write = by_sid(found, "WriteResults")
    assert write["Resource"] == objects_arn(bucket, "glue/")
    assert "s3:PutObject" in write["Action"]
    for statement in found:
        for action in as_list(statement["Action"]):
            assert not action.startswith(("secretsmanager:", "rds", "glue:")), action


def test_glue_roles_use_no_managed_policies(spark_synth: Synth) -> None:
    role = spark_synth.stack.heavy_aggregation.role
    assert (
        "ManagedPolicyArns"
        not in spark_synth.resources[logical_id(spark_synth, role)]["Properties"]
    )


def test_only_the_detector_may_start_the_glue_job(spark_synth: Synth) -> None:
    detector_role = ref(logical_id(spark_synth, spark_synth.stack.detector.lambda_.role))
    for policy in spark_synth.of_type("AWS::IAM::Policy").values():
        actions = {
            a
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            for a in as_list(s["Action"])
        }
        if {a for a in actions if a.startswith("glue:")}:
            assert policy["Properties"]["Roles"] == [detector_role]


def test_job_gets_the_core_zip_as_extra_py_files(spark_synth: Synth) -> None:
    libraries = spark_synth.stack.heavy_aggregation.libraries
    args = glue_job(spark_synth)["DefaultArguments"]
    assert args["--extra-py-files"] == spark_synth.stack.resolve(libraries.s3_object_url)
    assert args["--extra-py-files"]["Fn::Sub"].endswith(f"/{libraries.asset_hash}.zip")
    # A file asset (uploaded as is), staged byte for byte from the zip the build wrote.
    manifest = json.loads((spark_synth.outdir / "TxnPipe.assets.json").read_text())
    assert manifest["files"][libraries.asset_hash]["source"] == {
        "path": f"asset.{libraries.asset_hash}.zip",
        "packaging": "file",
    }
    staged = staged_libraries(spark_synth).read_bytes()
    assert staged == spark_synth.stack.heavy_aggregation.libraries_zip.read_bytes()
    assert staged == bundling.core_zip_bytes()


def test_glue_role_reads_exactly_the_script_and_the_zip(spark_synth: Synth) -> None:
    stack = spark_synth.stack
    heavy = stack.heavy_aggregation
    found = statements(spark_synth, heavy.role)
    read = by_sid(found, "ReadScriptAndLibraries")
    assert read["Effect"] == "Allow"
    assert as_list(read["Action"]) == ["s3:GetObject"]
    expected = [
        stack.resolve(asset.bucket.arn_for_objects(asset.s3_object_key))
        for asset in (heavy.script, heavy.libraries)
    ]
    # CDK orders a statement's resources by their rendered text, i.e. by the asset hashes.
    assert sorted(read["Resource"], key=json.dumps) == sorted(expected, key=json.dumps)
    assert f"/{heavy.libraries.asset_hash}.zip" in json.dumps(read["Resource"])
    # No other statement of the role touches the assets bucket.
    for statement in found:
        if statement is not read:
            assert "cdk-hnb659fds-assets" not in json.dumps(statement), statement


def test_detector_is_told_to_use_the_job(spark_synth: Synth) -> None:
    env = spark_synth.resources["DetectorFunction"]["Properties"]["Environment"]["Variables"]
    assert env["TXNPIPE_UPGRADE_ENGINE"] == "spark"
    assert env["TXNPIPE_GLUE_JOB_NAME"] == JOB_NAME == glue_job(spark_synth)["Name"]
    chunker_env = spark_synth.resources["ChunkerFunction"]["Properties"]["Environment"]
    assert "TXNPIPE_UPGRADE_ENGINE" not in chunker_env["Variables"]


def test_detector_may_start_poll_and_read_the_job_output(spark_synth: Synth) -> None:
    stack = spark_synth.stack
    bucket = logical_id(spark_synth, stack.storage.bucket)
    found = statements(spark_synth, stack.detector.lambda_.role)
    read = by_sid(found, "ReadGlueResults")
    assert read["Resource"] == objects_arn(bucket, "glue/")
    assert as_list(read["Action"]) == ["s3:GetObject"]
    listing = by_sid(found, "ListGlueResults")  # list_objects_v2 under glue/<source>/...
    assert as_list(listing["Action"]) == ["s3:ListBucket"]
    assert listing["Resource"] == get_att(bucket, "Arn")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["glue/*"]}}
    glue = [s for s in found if any(a.startswith("glue:") for a in as_list(s["Action"]))]
    assert len(glue) == 1
    # GetJobRuns: after ConcurrentRunsExceededException the core lists runs to find the one
    # in flight
    assert sorted(as_list(glue[0]["Action"])) == [
        "glue:GetJobRun",
        "glue:GetJobRuns",
        "glue:StartJobRun",
    ]
    assert glue[0]["Resource"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                ref("AWS::Partition"),
                ":glue:",
                ref("AWS::Region"),
                ":",
                ref("AWS::AccountId"),
                f":job/{JOB_NAME}",
            ],
        ]
    }


def test_only_this_jobs_state_changes_reach_the_detector(spark_synth: Synth) -> None:
    rules = {
        rule_id: rule["Properties"]
        for rule_id, rule in spark_synth.of_type("AWS::Events::Rule").items()
        if "aws.glue" in json.dumps(rule["Properties"].get("EventPattern", {}))
    }
    assert len(rules) == 1
    ((rule_id, rule),) = rules.items()
    assert rule["EventPattern"] == {
        "source": ["aws.glue"],
        "detail-type": ["Glue Job State Change"],
        "detail": {"jobName": [JOB_NAME], "state": list(TERMINAL_STATES)},
    }
    assert [target["Arn"] for target in rule["Targets"]] == [get_att("DetectorFunction", "Arn")]
    permissions = [
        p["Properties"]
        for p in spark_synth.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
        and p["Properties"].get("SourceArn") == get_att(rule_id, "Arn")
    ]
    assert len(permissions) == 1
    assert permissions[0]["FunctionName"] == get_att("DetectorFunction", "Arn")


# -- the detector's bundle --------------------------------------------------------------------


def test_only_the_spark_detector_bundles_pyarrow(default_synth: Synth, spark_synth: Synth) -> None:
    def has_pyarrow(requirements: tuple[str, ...]) -> bool:
        return any(r.split("=")[0].strip() == "pyarrow" for r in requirements)

    assert has_pyarrow(spark_synth.stack.detector.lambda_.requirements)
    assert spark_synth.stack.detector.lambda_.requirements == bundling.detector_requirements(
        "spark"
    )
    assert not has_pyarrow(spark_synth.stack.chunker.lambda_.requirements)
    assert not has_pyarrow(default_synth.stack.detector.lambda_.requirements)
    assert not has_pyarrow(default_synth.stack.chunker.lambda_.requirements)
    assert default_synth.stack.detector.lambda_.requirements == bundling.read_requirements()
    assert bundling.detector_requirements("inline") == bundling.read_requirements()
    # the spark lock: the shared packages at the same pins, plus pyarrow
    spark = bundling.detector_requirements("spark")
    assert set(bundling.read_requirements()) < set(spark)
    (extra,) = set(spark) - set(bundling.read_requirements())
    assert extra.startswith("pyarrow==26.0.1 --hash=sha256:")

    def code_key(synth: Synth, function: str) -> str:
        return synth.resources[function]["Properties"]["Code"]["S3Key"]

    # The asset hash follows the requirements: the detector's differs, the chunker's does not.
    assert code_key(spark_synth, "DetectorFunction") != code_key(default_synth, "DetectorFunction")
    assert code_key(spark_synth, "ChunkerFunction") == code_key(default_synth, "ChunkerFunction")


# -- the core zip -----------------------------------------------------------------------------


def test_zip_holds_the_core_package_at_its_root(spark_synth: Synth) -> None:
    with zipfile.ZipFile(staged_libraries(spark_synth)) as archive:
        infos = archive.infolist()
        assert archive.testzip() is None
    names = [info.filename for info in infos]
    assert set(REQUIRED_MODULES) <= set(names)
    assert names == sorted(names)
    assert all(name.startswith("txnpipe/") for name in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    sources = {
        "txnpipe/" + p.relative_to(REPO / "txnpipe").as_posix()
        for p in (REPO / "txnpipe").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
        and (p.parent == REPO / "txnpipe" and p.name == "__init__.py"
             or p.relative_to(REPO / "txnpipe").parts[0] in ("core", "batch"))
    }  # fmt: skip
    assert set(names) == sources  # what the job imports: the core and the batch engines
    for info in infos:
        assert info.date_time == bundling.ZIP_TIMESTAMP
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.external_attr >> 16 == 0o100644
        assert info.create_system == 3


def test_zip_is_byte_identical_across_builds(tmp_path: Path, spark_synth: Synth) -> None:
    first = bundling.write_core_zip(tmp_path / "a" / "libs.zip").read_bytes()
    second = bundling.write_core_zip(tmp_path / "b" / "libs.zip").read_bytes()
    assert first == second == bundling.core_zip_bytes()
    # Two synthesis runs (other context, other folder) stage the same asset.
    other = synthesize(tmp_path / "again", upgradeEngine="spark", removalPolicy="destroy")
    assert other.error is None
    assert (
        other.stack.heavy_aggregation.libraries.asset_hash
        == spark_synth.stack.heavy_aggregation.libraries.asset_hash
    )
    assert staged_libraries(other).read_bytes() == staged_libraries(spark_synth).read_bytes()


def test_zip_depends_on_content_only(tmp_path: Path) -> None:
    core = tmp_path / "src" / "txnpipe"
    (core / "batch").mkdir(parents=True)
    (core / "core").mkdir()
    (core / "__init__.py").write_text('"""core"""\n')
    (core / "batch" / "__init__.py").write_text("")
    (core / "core" / "weights.py").write_text("W = 1\n")
    first = bundling.core_zip_bytes(core)
    # Timestamps, permissions and caches do not count.
    os.utime(core / "core" / "weights.py", (1_700_000_000, 1_700_000_000))
    (core / "core" / "weights.py").chmod(0o600)
    (core / "__pycache__").mkdir()
    (core / "__pycache__" / "weights.cpython-311.pyc").write_bytes(b"junk")
    (core / "batch" / "stale.pyc").write_bytes(b"junk")
    (core / ".DS_Store").write_bytes(b"junk")
    assert bundling.core_zip_bytes(core) == first
    with zipfile.ZipFile(bundling.write_core_zip(tmp_path / "out" / "libs.zip", core)) as archive:
        assert archive.namelist() == [
            "txnpipe/__init__.py",
            "txnpipe/batch/__init__.py",
            "txnpipe/core/weights.py",
        ]
        assert archive.read("txnpipe/core/weights.py") == b"W = 1\n"
    # Content does.
    (core / "core" / "weights.py").write_text("W = 2\n")
    assert bundling.core_zip_bytes(core) != first
    target = tmp_path / "out" / "libs.zip"
    bundling.write_core_zip(target, core)
    assert target.read_bytes() == bundling.core_zip_bytes(core)
    assert [p.name for p in target.parent.iterdir()] == ["libs.zip"]  # no partial file left


def test_zip_needs_a_package(tmp_path: Path) -> None:
    (tmp_path / "txnpipe").mkdir()
    with pytest.raises(bundling.BundlingError, match="core package not found"):
        bundling.core_zip_bytes(tmp_path / "txnpipe")


def test_the_job_script_imports_from_the_zip(spark_synth: Synth, tmp_path: Path) -> None:
    """What Glue does with --extra-py-files: the zip on sys.path, then the job's imports."""
    libraries = staged_libraries(spark_synth)
    probe = f"""
import importlib.util, sys
sys.path.insert(0, {str(libraries)!r})
import txnpipe, txnpipe.core.errors, txnpipe.core.settings, txnpipe.core.weights
import txnpipe.batch.spark_engine as engine
spec = importlib.util.spec_from_file_location(
    "upgrade_percentiles", {str(REPO / "glue_jobs" / "upgrade_percentiles.py")!r})
job = sys.modules["upgrade_percentiles"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(job)
assert callable(job.main) and job.upgrade_candidates is engine.upgrade_candidates
print(txnpipe.__file__)
print(engine.__file__)
"""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,  # not the repository: its txnpipe/ must not be found first
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    origins = result.stdout.split()
    assert origins == [
        str(libraries / "txnpipe" / "__init__.py"),
        str(libraries / "txnpipe" / "batch" / "spark_engine.py"),
    ]
