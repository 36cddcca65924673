"""Template assertions on the default stack (cdk.json's context; bundling skipped)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions

from infra.config import SETTING_NAMES
from tests.infra.synth import REPO, Synth

Match = assertions.Match


def logical_id(synth: Synth, construct: Any) -> str:
    return synth.stack.get_logical_id(construct.node.default_child)


def ref(logical: str) -> dict[str, str]:
    return {"Ref": logical}


def get_att(logical: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical, attribute]}


def statements(synth: Synth, role_construct: Any) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to ``role_construct``."""
    role_id = synth.stack.get_logical_id(role_construct.node.default_child)
    found = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if ref(role_id) in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def objects_arn(bucket_id: str, prefix: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [get_att(bucket_id, "Arn"), f"/{prefix}*"]]}


def by_sid(found: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    matches = [s for s in found if s.get("Sid") == sid]
    assert len(matches) == 1, f"expected one statement {sid}, got {matches}"
    return matches[0]


# -- storage ------------------------------------------------------------------------------


def test_data_bucket_is_private_encrypted_versioned_and_logged(default_synth: Synth) -> None:
    storage = default_synth.stack.storage
    bucket_id = logical_id(default_synth, storage.bucket)
    log_bucket_id = logical_id(default_synth, storage.log_bucket)
    props = default_synth.resources[bucket_id]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == ref(log_bucket_id)
    # Both buckets deny requests that are not over TLS.
    for bucket in (bucket_id, log_bucket_id):
        default_synth.template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": ref(bucket),
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "s3:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )
    # Nothing account-specific: no bucket name unless context gives one.
    assert "BucketName" not in props


def test_chunks_notify_the_detector_and_inputs_the_chunker(default_synth: Synth) -> None:
    """Streams as data: any file put under inputs/transactions/ is a stream, so the chunker
    hears of every put there (and of importance files); the detector of chunks only."""
    notifications = default_synth.of_type("Custom::S3BucketNotifications")
    assert len(notifications) == 1
    config = next(iter(notifications.values()))["Properties"]["NotificationConfiguration"]
    assert set(config) == {"LambdaFunctionConfigurations"}
    targets = {}
    for entry in config["LambdaFunctionConfigurations"]:
        assert entry["Events"] == ["s3:ObjectCreated:*"]
        ((rule,),) = [entry["Filter"]["Key"]["FilterRules"]]
        assert rule["Name"] == "prefix"
        targets[rule["Value"]] = entry["LambdaFunctionArn"]
    assert targets == {
        "chunks/": get_att("DetectorFunction", "Arn"),
        "inputs/transactions/": get_att("ChunkerFunction", "Arn"),
        "inputs/importance/": get_att("ChunkerFunction", "Arn"),
    }


def test_no_function_carries_a_fixed_transactions_key(default_synth: Synth) -> None:
    template = json.dumps(default_synth.template_json)
    assert "bs140513_032310" not in template and "bsNET140513_032310" not in template
    for function in ("ChunkerFunction", "DetectorFunction"):
        env = default_synth.resources[function]["Properties"]["Environment"]["Variables"]
        assert not [name for name in env if name.endswith("_KEY")]


# -- Lambdas ------------------------------------------------------------------------------


def common_env(synth: Synth, db_user: str) -> dict[str, Any]:
    database = synth.stack.database
    return {
        "TXNPIPE_BUCKET": ref(logical_id(synth, synth.stack.storage.bucket)),
        # IAM authentication to the proxy as the function's own role; no secret ARN
        "TXNPIPE_DB_HOST": get_att(logical_id(synth, database.proxy), "Endpoint"),
        "TXNPIPE_DB_PORT": "5432",
        "TXNPIPE_DB_NAME": "txnpipe",
        "TXNPIPE_DB_USER": db_user,
        "TXNPIPE_DB_SSLMODE": "verify-full",
        "TXNPIPE_DB_SSLROOTCERT": "/var/task/certs/amazon-trust-roots.pem",
    }


def test_chunker_function(default_synth: Synth) -> None:
    props = default_synth.resources["ChunkerFunction"]["Properties"]
    assert props["Environment"]["Variables"] == {
        **common_env(default_synth, "txnpipe_chunker"),
        "TXNPIPE_INPUTS_PREFIX": "inputs/",
        "TXNPIPE_RUN_SECONDS": "50",
        "POWERTOOLS_SERVICE_NAME": "chunker",
        "POWERTOOLS_METRICS_NAMESPACE": "txnpipe",
    }
    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "handler.handler"
    assert props["Architectures"] == ["x86_64"]
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["Timeout"] == 70


def test_detector_function(default_synth: Synth) -> None:
    props = default_synth.resources["DetectorFunction"]["Properties"]
    assert props["Environment"]["Variables"] == {
        **common_env(default_synth, "txnpipe_detector"),
        "TXNPIPE_UPGRADE_ENGINE": "inline",  # no Glue job, so no TXNPIPE_GLUE_JOB_NAME
        "TXNPIPE_EVENT_BUS": ref(logical_id(default_synth, default_synth.stack.detection_events.bus)),
        "POWERTOOLS_SERVICE_NAME": "detector",
        "POWERTOOLS_METRICS_NAMESPACE": "txnpipe",
    }
    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "handler.handler"
    assert "ReservedConcurrentExecutions" not in props


def test_no_setting_is_set_without_context(default_synth: Synth) -> None:
    for name in ("ChunkerFunction", "DetectorFunction"):
        env = default_synth.resources[name]["Properties"]["Environment"]["Variables"]
        assert not {f"TXNPIPE_{s.upper()}" for s in SETTING_NAMES} & set(env)


def isolated_subnet_ids(synth: Synth) -> list[dict[str, str]]:
    vpc = synth.stack.network.vpc
    return [ref(synth.stack.get_logical_id(s.node.default_child)) for s in vpc.isolated_subnets]


@pytest.mark.parametrize("function", ["ChunkerFunction", "DetectorFunction"])
def test_lambdas_run_in_the_isolated_subnets(default_synth: Synth, function: str) -> None:
    vpc_config = default_synth.resources[function]["Properties"]["VpcConfig"]
    assert vpc_config["SubnetIds"] == isolated_subnet_ids(default_synth)
    assert len(vpc_config["SecurityGroupIds"]) == 1


def test_lambda_code_assets_are_the_handler_folders(default_synth: Synth) -> None:
    manifest = json.loads((default_synth.outdir / "TxnPipe.assets.json").read_text())
    for function, folder in (("ChunkerFunction", "chunker"), ("DetectorFunction", "detector")):
        resource = default_synth.resources[function]
        asset_path = resource["Metadata"]["aws:asset:path"]
        # bundling skipped: the staged asset is the handler folder itself
        assert (default_synth.outdir / asset_path / "handler.py").read_bytes() == (
            REPO / "lambdas" / folder / "handler.py"
        ).read_bytes()
        key = resource["Properties"]["Code"]["S3Key"]
        assert key.removesuffix(".zip") in manifest["files"]
    assert (
        default_synth.resources["ChunkerFunction"]["Properties"]["Code"]["S3Key"]
        != default_synth.resources["DetectorFunction"]["Properties"]["Code"]["S3Key"]
    )


# -- network ------------------------------------------------------------------------------


def test_vpc_has_isolated_subnets_only_and_endpoints(default_synth: Synth) -> None:
    template = default_synth.template
    for absent in ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::EIP"):
        template.resource_count_is(absent, 0)
    for subnet in default_synth.of_type("AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    endpoints = [r["Properties"] for r in default_synth.of_type("AWS::EC2::VPCEndpoint").values()]
    services = {
        json.dumps(e["ServiceName"]): e.get("VpcEndpointType", "Gateway") for e in endpoints
    }
    assert len(endpoints) == 3  # the Glue endpoint only with upgradeEngine=spark
    assert any("secretsmanager" in name and kind == "Interface" for name, kind in services.items())
    assert any(".events" in name and kind == "Interface" for name, kind in services.items())
    assert not any("glue" in name for name in services)
    assert any(".s3" in name and kind == "Gateway" for name, kind in services.items())
    template.resource_count_is("AWS::EC2::FlowLog", 1)


# -- database -----------------------------------------------------------------------------


def test_postgres_16_encrypted_in_isolated_subnets(default_synth: Synth) -> None:
    (instance,) = default_synth.of_type("AWS::RDS::DBInstance").values()
    props = instance["Properties"]
    assert props["Engine"] == "postgres"
    assert props["EngineVersion"].split(".")[0] == "16"
    assert props["StorageEncrypted"] is True
    assert props["PubliclyAccessible"] is False
    assert props["DeletionProtection"] is True
    assert props["BackupRetentionPeriod"] >= 1
    assert "MasterUserPassword" in props and "resolve:secretsmanager" in json.dumps(
        props["MasterUserPassword"]
    )
    (subnet_group,) = default_synth.of_type("AWS::RDS::DBSubnetGroup").values()
    assert subnet_group["Properties"]["SubnetIds"] == isolated_subnet_ids(default_synth)
    # the master secret and one per function role, each generated
    secrets = default_synth.of_type("AWS::SecretsManager::Secret").values()
    usernames = sorted(
        json.loads(s["Properties"]["GenerateSecretString"]["SecretStringTemplate"])["username"]
        for s in secrets
    )
    assert usernames == ["txnpipe_admin", "txnpipe_chunker", "txnpipe_detector"]


def test_proxy_requires_tls_and_only_lambdas_reach_it(default_synth: Synth) -> None:
    stack = default_synth.stack
    (proxy,) = default_synth.of_type("AWS::RDS::DBProxy").values()
    props = proxy["Properties"]
    assert props["EngineFamily"] == "POSTGRESQL"
    assert props["RequireTLS"] is True
    assert props["VpcSubnetIds"] == isolated_subnet_ids(default_synth)
    assert {a["AuthScheme"] for a in props["Auth"]} == {"SECRETS"}
    assert {a["IAMAuth"] for a in props["Auth"]} == {"REQUIRED"}

    proxy_sg = logical_id(default_synth, stack.database.proxy_security_group)
    instance_sg = logical_id(default_synth, stack.database.instance_security_group)
    lambda_sgs = {
        logical_id(default_synth, f.lambda_.security_group) for f in (stack.chunker, stack.detector)
    }

    def ingress_sources(group: str) -> set[tuple[str, str, str]]:
        rules = set()
        for rule in default_synth.of_type("AWS::EC2::SecurityGroupIngress").values():
            p = rule["Properties"]
            if p["GroupId"] == get_att(group, "GroupId"):
                rules.add(
                    (
                        p["SourceSecurityGroupId"]["Fn::GetAtt"][0],
                        json.dumps(p["FromPort"]),
                        json.dumps(p["ToPort"]),
                    )
                )
        inline = default_synth.resources[group]["Properties"].get("SecurityGroupIngress", [])
        assert inline == [], f"unexpected inline ingress on {group}: {inline}"
        return rules

    assert ingress_sources(proxy_sg) == {(sg, "5432", "5432") for sg in lambda_sgs}
    instance_rules = ingress_sources(instance_sg)
    # the proxy, and at deploy/rotation time the migrator and the rotation functions
    assert {source for source, _, _ in instance_rules} == {
        proxy_sg,
        logical_id(default_synth, stack.migration.lambda_.security_group),
        logical_id(default_synth, stack.database.rotation_security_group),
    }


# -- heavy aggregation --------------------------------------------------------------------
# With the default inline engine there is no Glue job at all (tests/infra/test_least_privilege.py);
# the job itself is tested with upgradeEngine=spark in tests/infra/test_spark_engine.py.


# -- schedule, failures, alarms -----------------------------------------------------------


def test_chunker_schedule_is_one_minute(default_synth: Synth) -> None:
    rules = [
        r["Properties"]
        for r in default_synth.of_type("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
        and get_att("ChunkerFunction", "Arn") in [t["Arn"] for t in r["Properties"]["Targets"]]
    ]
    assert len(rules) == 1
    (rule,) = rules
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == get_att("ChunkerFunction", "Arn")
    default_synth.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": ref("ChunkerFunction"),
            "MaximumRetryAttempts": 0,
            "MaximumEventAgeInSeconds": 60,
        },
    )


def test_detector_failures_go_to_an_encrypted_dlq_with_alarm(default_synth: Synth) -> None:
    queue_id = logical_id(default_synth, default_synth.stack.detector.dead_letter_queue)
    default_synth.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": ref("DetectorFunction"),
            "DestinationConfig": {"OnFailure": {"Destination": get_att(queue_id, "Arn")}},
        },
    )
    assert default_synth.resources[queue_id]["Properties"]["SqsManagedSseEnabled"] is True
    default_synth.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [ref(queue_id)],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )
    default_synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": get_att(queue_id, "QueueName")}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
        },
    )


def test_alarms_have_no_actions_without_a_topic(default_synth: Synth) -> None:
    for alarm in default_synth.of_type("AWS::CloudWatch::Alarm").values():
        assert "AlarmActions" not in alarm["Properties"]


# -- IAM ----------------------------------------------------------------------------------


def test_chunker_permissions(default_synth: Synth) -> None:
    stack = default_synth.stack
    bucket = logical_id(default_synth, stack.storage.bucket)
    found = statements(default_synth, stack.chunker.lambda_.role)
    assert by_sid(found, "ReadTransactions") == {
        "Sid": "ReadTransactions",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": objects_arn(bucket, "inputs/transactions/"),
    }
    assert by_sid(found, "WriteChunks") == {
        "Sid": "WriteChunks",
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": objects_arn(bucket, "chunks/"),
    }
    s3_actions = {a for s in found for a in as_list(s["Action"]) if a.startswith("s3:")}
    # listing: inputs/transactions/ (puts whose event was lost), inputs/importance/ versions
    assert s3_actions == {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject",
                          "s3:ListBucket", "s3:ListBucketVersions"}  # fmt: skip
    assert not any(a.startswith("glue:") for s in found for a in as_list(s["Action"]))
    assert_reads_no_secret(found)


def test_detector_permissions(default_synth: Synth) -> None:
    stack = default_synth.stack
    bucket = logical_id(default_synth, stack.storage.bucket)
    found = statements(default_synth, stack.detector.lambda_.role)
    assert by_sid(found, "ReadImportance")["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert by_sid(found, "ReadImportance")["Resource"] == objects_arn(bucket, "inputs/importance/")
    assert by_sid(found, "ReadChunks")["Action"] == "s3:GetObject"
    assert by_sid(found, "ReadChunks")["Resource"] == objects_arn(bucket, "chunks/")
    write = by_sid(found, "WriteDetectionsAndRejects")
    assert write["Action"] == "s3:PutObject"
    assert sorted(map(json.dumps, write["Resource"])) == sorted(
        json.dumps(objects_arn(bucket, p)) for p in ("detections/", "rejects/")
    )
    listing = by_sid(found, "ListChunks")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["chunks/*"]}}
    # inline engine: no Glue at all (spark: tests/infra/test_spark_engine.py)
    assert not [s for s in found if any(a.startswith("glue:") for a in as_list(s["Action"]))]
    assert "glue/" not in json.dumps(found)
    assert_reads_no_secret(found)


def assert_reads_no_secret(found: list[dict[str, Any]]) -> None:
    """The functions authenticate with IAM tokens: no Secrets Manager permission at all."""
    actions = {a for s in found for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("secretsmanager:")}


def test_only_the_detector_may_start_the_glue_job(default_synth: Synth) -> None:
    detector_role = ref(logical_id(default_synth, default_synth.stack.detector.lambda_.role))
    for policy in default_synth.of_type("AWS::IAM::Policy").values():
        actions = {
            a
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            for a in as_list(s["Action"])
        }
        if actions & {"glue:StartJobRun", "glue:GetJobRun", "glue:*"}:
            assert policy["Properties"]["Roles"] == [detector_role]


def test_star_resources_only_where_aws_allows_nothing_narrower(default_synth: Synth) -> None:
    """In the project's own roles, only the Lambda VPC (ENI) actions have Resource "*"."""
    stack = default_synth.stack
    own_roles = [
        stack.chunker.lambda_.role,
        stack.detector.lambda_.role,
        stack.migration.lambda_.role,
    ]
    for role in own_roles:
        for statement in statements(default_synth, role):
            if "*" in as_list(statement["Resource"]):
                assert statement.get("Sid") == "JoinVpc", statement
                assert all(
                    a.startswith("ec2:")
                    and "NetworkInterface" in a
                    or a
                    in (
                        "ec2:DescribeSubnets",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    )
                    for a in as_list(statement["Action"])
                )
            for action in as_list(statement["Action"]):
                assert not action.endswith("*"), f"wildcard action {action} in {role.node.path}"


def test_lambda_roles_use_no_managed_policies(default_synth: Synth) -> None:
    stack = default_synth.stack
    for role in (
        stack.chunker.lambda_.role,
        stack.detector.lambda_.role,
        stack.migration.lambda_.role,
    ):
        props = default_synth.resources[logical_id(default_synth, role)]["Properties"]
        assert "ManagedPolicyArns" not in props


# -- outputs ------------------------------------------------------------------------------


def test_outputs(default_synth: Synth) -> None:
    outputs = default_synth.template_json["Outputs"]
    for name in (
        "ChunkerLogGroup",
        "DetectorLogGroup",
        "BucketName",
        "ChunkerFunctionName",
        "DetectorFunctionName",
        "DatabaseProxyEndpoint",
        "DatabaseSecretArn",
        "DeadLetterQueueUrl",
        "DashboardName",
    ):
        assert name in outputs
    assert "GlueJobName" not in outputs  # only with upgradeEngine=spark


def test_nothing_account_specific(default_synth: Synth) -> None:
    text = json.dumps(default_synth.template_json)
    assert '"Ref": "AWS::AccountId"' in text  # accounts come from pseudo parameters only
    import re

    assert not re.search(r"\b\d{12}\b", text), "a 12-digit account id in the template"
    assert default_synth.stack.environment.startswith("aws://unknown-account/unknown-region")


def test_handlers_are_thin(default_synth: Synth) -> None:
    for folder, function in (
        ("chunker", "handle_chunker_event"),
        ("detector", "handle_detector_event"),
    ):
        text = Path(REPO, "lambdas", folder, "handler.py").read_text()
        assert f"from txnpipe.aws.entry import {function}" in text
        assert f"return {function}(event, context)" in text


# -- queries and data that ages out -------------------------------------------------------


def test_catalogue_tables_lie_over_the_outputs_partitioned_by_stream(default_synth: Synth) -> None:
    from txnpipe.core.tables import TABLES

    bucket = ref(logical_id(default_synth, default_synth.stack.storage.bucket))
    (database,) = default_synth.of_type("AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == "txnpipe"
    tables = {t["Properties"]["TableInput"]["Name"]: t["Properties"]
              for t in default_synth.of_type("AWS::Glue::Table").values()}  # fmt: skip
    assert set(tables) == {"detections", "rejects"}
    for table in TABLES:
        props = tables[table.name]
        assert props["DatabaseName"] == "txnpipe"
        found = props["TableInput"]
        location = {"Fn::Join": ["", ["s3://", bucket, f"/{table.prefix}"]]}
        assert found["StorageDescriptor"]["Location"] == location
        assert [c["Name"] for c in found["StorageDescriptor"]["Columns"]] == [
            c.lower() for c in table.columns]  # fmt: skip
        assert found["PartitionKeys"] == [{"Name": "source", "Type": "string"}]
        params = found["Parameters"]
        assert params["projection.enabled"] == "true" and params["skip.header.line.count"] == "1"
        assert params["projection.source.type"] == "injected"  # any stream, no crawler
        assert params["storage.location.template"] == {
            "Fn::Join": ["", ["s3://", bucket, f"/{table.prefix}${{source}}/"]]}
    assert not default_synth.of_type("AWS::Glue::Crawler")


def test_the_workgroup_keeps_its_results_encrypted_in_its_own_place(default_synth: Synth) -> None:
    bucket = ref(logical_id(default_synth, default_synth.stack.storage.bucket))
    (group,) = default_synth.of_type("AWS::Athena::WorkGroup").values()
    config = group["Properties"]["WorkGroupConfiguration"]
    assert group["Properties"]["Name"] == "TxnPipe"
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["ResultConfiguration"] == {
        "OutputLocation": {"Fn::Join": ["", ["s3://", bucket, "/athena/"]]},
        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
    }
    assert config["BytesScannedCutoffPerQuery"] > 0


def test_scratch_data_expires_and_detections_stay(default_synth: Synth) -> None:
    props = default_synth.resources[logical_id(default_synth, default_synth.stack.storage.bucket)]
    rules = {r["Id"]: r for r in props["Properties"]["LifecycleConfiguration"]["Rules"]}
    for prefix in ("chunks", "glue", "athena"):
        assert rules[f"expire-{prefix}"]["Prefix"] == f"{prefix}/"
        assert rules[f"expire-{prefix}"]["ExpirationInDays"] == 30
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": 30}  # fmt: skip
    assert not [r for r in rules.values() if r.get("Prefix", "").startswith(
        ("detections", "rejects", "inputs"))]  # fmt: skip



def test_the_detection_bus_and_its_sample_rule(default_synth: Synth) -> None:
    from txnpipe.aws.detection_events import DETAIL_TYPE, SOURCE

    (bus,) = default_synth.of_type("AWS::Events::EventBus").values()
    assert bus["Properties"]["Name"] == "TxnPipe-detections"
    (rule,) = [r["Properties"] for r in default_synth.of_type("AWS::Events::Rule").values()
               if "EventBusName" in r["Properties"]]  # fmt: skip
    assert rule["EventBusName"] == ref(logical_id(default_synth, default_synth.stack.detection_events.bus))
    assert rule["EventPattern"] == {"source": [SOURCE], "detail-type": [DETAIL_TYPE]}
    docs = (REPO / "docs" / "deploy.md").read_text()
    assert json.loads(docs.split("```json\n", 1)[1].split("```", 1)[0]) == rule["EventPattern"]
    (target,) = rule["Targets"]
    queue = default_synth.stack.detection_events.queue
    assert target["Arn"] == get_att(logical_id(default_synth, queue), "Arn")
