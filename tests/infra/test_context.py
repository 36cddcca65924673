"""Context keys change the stack as documented (one synthesis with many overrides, cdk-nag on)."""

from __future__ import annotations

import pytest

from tests.infra.synth import Synth, synthesize

OVERRIDES = {
    "stackName": "TxnPipeDev",
    "account": "111122223333",
    "region": "ap-south-1",
    "removalPolicy": "destroy",
    "bucketName": "txnpipe-dev-data-example",
    "inputsPrefix": "incoming/",
    "upgradeEngine": "spark",
    "scheduleEnabled": "false",
    "localInvoke": True,
    "runSeconds": "55",  # from `cdk -c`, values arrive as strings
    "chunkerTimeoutSeconds": 80,
    "chunkerReservedConcurrency": 0,
    "detectorReservedConcurrency": 3,
    "dbMultiAz": "true",
    "glueJobName": "txnpipe-dev-upgrade",
    "glueNumberOfWorkers": 4,
    "alarmTopicArn": "arn:aws:sns:ap-south-1:111122223333:txnpipe-ops",
    "settings": '{"chunk_rows": 500, "chunk_interval_seconds": 7, "upgrade_weight_percentile": "0.25"}',
}


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-custom"), nag=True, **OVERRIDES)


def test_destroy_variant_passes_nag(custom: Synth) -> None:
    assert custom.error is None, custom.violations()
    assert custom.violations() == []


def test_stack_name_and_environment(custom: Synth) -> None:
    assert custom.stack.stack_name == "TxnPipeDev"
    assert custom.stack.environment == "aws://111122223333/ap-south-1"


def test_settings_and_keys_reach_the_functions(custom: Synth) -> None:
    chunker = custom.resources["ChunkerFunction"]["Properties"]
    detector = custom.resources["DetectorFunction"]["Properties"]
    settings = {
        "TXNPIPE_CHUNK_ROWS": "500",
        "TXNPIPE_CHUNK_INTERVAL_SECONDS": "7.0",
        "TXNPIPE_UPGRADE_WEIGHT_PERCENTILE": "0.25",
    }
    for env in (chunker["Environment"]["Variables"], detector["Environment"]["Variables"]):
        assert settings.items() <= env.items()
    assert chunker["Environment"]["Variables"]["TXNPIPE_INPUTS_PREFIX"] == "incoming/"
    assert chunker["Environment"]["Variables"]["TXNPIPE_RUN_SECONDS"] == "55"
    assert chunker["Timeout"] == 80
    assert "ReservedConcurrentExecutions" not in chunker
    assert detector["ReservedConcurrentExecutions"] == 3
    assert detector["Environment"]["Variables"]["TXNPIPE_UPGRADE_ENGINE"] == "spark"
    assert detector["Environment"]["Variables"]["TXNPIPE_GLUE_JOB_NAME"] == "txnpipe-dev-upgrade"


def test_glue_job_follows_context(custom: Synth) -> None:
    (job,) = custom.of_type("AWS::Glue::Job").values()
    props = job["Properties"]
    assert props["Name"] == "txnpipe-dev-upgrade"
    assert props["NumberOfWorkers"] == 4
    assert props["DefaultArguments"]["--txnpipe_chunk_rows"] == "500"


def test_destroy_removal_policy(custom: Synth) -> None:
    (instance,) = custom.of_type("AWS::RDS::DBInstance").values()
    assert instance["Properties"]["DeletionProtection"] is False
    assert instance["Properties"]["MultiAZ"] is True
    assert instance["DeletionPolicy"] == "Delete"
    for bucket in custom.of_type("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    assert custom.of_type("Custom::S3AutoDeleteObjects")
    data = custom.resources[
        custom.stack.get_logical_id(custom.stack.storage.bucket.node.default_child)
    ]
    assert data["Properties"]["BucketName"] == "txnpipe-dev-data-example"


def test_alarms_notify_the_given_topic(custom: Synth) -> None:
    alarms = custom.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [
            "arn:aws:sns:ap-south-1:111122223333:txnpipe-ops"
        ]


def test_schedule_can_be_deployed_disabled(custom: Synth) -> None:
    states = {
        r["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0]: r["Properties"]["State"]
        for r in custom.of_type("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    }
    # the chunker's schedule follows the context; the detector's sweep only catches up on
    # streams already written, so it stays on
    assert states == {"ChunkerFunction": "DISABLED", "DetectorFunction": "ENABLED"}


def test_local_invoke_placeholders(custom: Synth) -> None:
    for name in ("ChunkerFunction", "DetectorFunction"):
        env = custom.resources[name]["Properties"]["Environment"]["Variables"]
        assert env["TXNPIPE_DATABASE_URL"] == ""
        assert env["TXNPIPE_S3_ENDPOINT"] == ""
