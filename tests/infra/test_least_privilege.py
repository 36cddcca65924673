"""Issue 14, "Least privilege, closer than today": one group of template assertions per change.

1. Glue (job, role, key, security configuration, state-change rule, endpoint, permissions)
   exists only with ``upgradeEngine=spark``.
2. Each function reads only the input sub-prefix it needs.
3. A one-minute sweep invokes the detector with the plain scheduled event.
4. A database role per function, IAM authentication through the proxy, the master secret
   read by the migrator only, the function secrets rotated.
5. Lambda security groups: egress to their few peers only.
6. VPC endpoint policies: this stack's bucket, secrets and job only.
7. TLS verified against the CA bundle each function ships.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from infra import bundling
from infra.heavy_aggregation import JOB_RUN_ACTIONS
from infra.migration import RESOURCE_TYPE, schema_hash
from infra.network import S3_ENDPOINT_ACTIONS
from tests.infra.synth import Synth, synthesize
from tests.infra.test_stack import (
    as_list,
    by_sid,
    get_att,
    isolated_subnet_ids,
    logical_id,
    objects_arn,
    ref,
    statements,
)

JOB_ARN = {
    "Fn::Join": [
        "",
        [
            "arn:",
            ref("AWS::Partition"),
            ":glue:",
            ref("AWS::Region"),
            ":",
            ref("AWS::AccountId"),
            ":job/TxnPipe-upgrade-percentiles",
        ],
    ]
}
GLUE_ONLY_TYPES = ("AWS::Glue::Job", "AWS::Glue::SecurityConfiguration", "AWS::KMS::Key")


@pytest.fixture(scope="module")
def spark_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    result = synthesize(tmp_path_factory.mktemp("cdk-least-privilege-spark"), upgradeEngine="spark")
    assert result.error is None, result.violations()
    return result


def secret_ref(synth: Synth, secret: Any) -> dict[str, str]:
    """How the template refers to a secret (an attached secret: its attachment's Ref)."""
    return synth.stack.resolve(secret.secret_arn)


def all_statements(synth: Synth) -> list[tuple[list[Any], dict[str, Any]]]:
    """(roles, statement) of every inline IAM policy statement of the template."""
    return [
        (policy["Properties"].get("Roles", []), statement)
        for policy in synth.of_type("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions_of(found: list[dict[str, Any]]) -> set[str]:
    return {action for statement in found for action in as_list(statement["Action"])}


# -- 1. Glue only with the spark engine -----------------------------------------------------


def glue_roles(synth: Synth) -> list[str]:
    return [
        role_id
        for role_id, role in synth.of_type("AWS::IAM::Role").items()
        if "glue.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    ]


def glue_rules(synth: Synth) -> list[str]:
    return [
        rule_id
        for rule_id, rule in synth.of_type("AWS::Events::Rule").items()
        if "aws.glue" in json.dumps(rule["Properties"].get("EventPattern", {}))
    ]


def endpoints(synth: Synth, service: str) -> dict[str, dict[str, Any]]:
    return {
        endpoint_id: endpoint["Properties"]
        for endpoint_id, endpoint in synth.of_type("AWS::EC2::VPCEndpoint").items()
        if json.dumps(endpoint["Properties"]["ServiceName"]).endswith(f'.{service}"]]}}')
    }


def test_inline_engine_deploys_no_glue_job_role_key_rule_or_endpoint(default_synth: Synth) -> None:
    assert default_synth.stack.config.upgrade_engine == "inline"
    for cfn_type in GLUE_ONLY_TYPES:
        default_synth.template.resource_count_is(cfn_type, 0)
    assert glue_roles(default_synth) == []
    assert glue_rules(default_synth) == []
    assert endpoints(default_synth, "glue") == {}
    assert default_synth.stack.heavy_aggregation is None
    assert "GlueJobName" not in default_synth.template_json["Outputs"]
    # nor the job's assets (script, core zip)
    manifest = json.loads((default_synth.outdir / "TxnPipe.assets.json").read_text())
    paths = [asset["source"]["path"] for asset in manifest["files"].values()]
    assert not [path for path in paths if path.endswith((".py", ".zip"))], paths


def test_inline_engine_grants_no_glue_action_and_no_glue_prefix(default_synth: Synth) -> None:
    for _, statement in all_statements(default_synth):
        assert not [a for a in as_list(statement["Action"]) if a.startswith("glue:")], statement
    detector = statements(default_synth, default_synth.stack.detector.lambda_.role)
    assert "glue/" not in json.dumps(detector)
    env = default_synth.resources["DetectorFunction"]["Properties"]["Environment"]["Variables"]
    assert "TXNPIPE_GLUE_JOB_NAME" not in env and env["TXNPIPE_UPGRADE_ENGINE"] == "inline"


def test_spark_engine_deploys_the_glue_job_and_all_it_needs(spark_synth: Synth) -> None:
    for cfn_type in GLUE_ONLY_TYPES:
        spark_synth.template.resource_count_is(cfn_type, 1)
    assert len(glue_roles(spark_synth)) == 1
    assert len(glue_rules(spark_synth)) == 1
    assert len(endpoints(spark_synth, "glue")) == 1


def test_spark_detector_may_start_poll_and_list_runs_of_that_one_job(spark_synth: Synth) -> None:
    found = statements(spark_synth, spark_synth.stack.detector.lambda_.role)
    glue = [s for s in found if any(a.startswith("glue:") for a in as_list(s["Action"]))]
    assert len(glue) == 1
    assert sorted(as_list(glue[0]["Action"])) == sorted(JOB_RUN_ACTIONS)
    assert sorted(JOB_RUN_ACTIONS) == ["glue:GetJobRun", "glue:GetJobRuns", "glue:StartJobRun"]
    assert glue[0]["Resource"] == JOB_ARN
    # and nobody else may touch the job
    detector_role = ref(logical_id(spark_synth, spark_synth.stack.detector.lambda_.role))
    for roles, statement in all_statements(spark_synth):
        if any(a.startswith("glue:") for a in as_list(statement["Action"])):
            assert roles == [detector_role]


def test_glue_endpoint_admits_only_that_job(spark_synth: Synth) -> None:
    ((_, props),) = endpoints(spark_synth, "glue").items()
    (statement,) = props["PolicyDocument"]["Statement"]
    assert statement == {
        "Sid": "TxnPipeJobOnly",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": sorted(JOB_RUN_ACTIONS),
        "Resource": JOB_ARN,
    }


# -- 2. Inputs: each function its own sub-prefix --------------------------------------------


def s3_statements(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in found if any(a.startswith("s3:") for a in as_list(s["Action"]))]


def test_chunker_reads_only_the_transactions_prefix(default_synth: Synth) -> None:
    stack = default_synth.stack
    bucket = logical_id(default_synth, stack.storage.bucket)
    found = s3_statements(statements(default_synth, stack.chunker.lambda_.role))
    reads = [s for s in found if any(a.startswith("s3:Get") for a in as_list(s["Action"]))]
    assert reads == [
        {
            "Sid": "ReadTransactions",
            "Effect": "Allow",
            # GetObjectVersion: the core pins the object version its stream started from
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": objects_arn(bucket, "inputs/transactions/"),
        }
    ]
    # of the importance files it lists the versions (to pin a new stream's), never reads one
    (versions,) = [s for s in found if "inputs/importance/" in json.dumps(s)]
    assert versions == {
        "Sid": "ListImportanceVersions", "Effect": "Allow", "Action": "s3:ListBucketVersions",
        "Resource": get_att(bucket, "Arn"),
        "Condition": {"StringLike": {"s3:prefix": ["inputs/importance/*"]}},
    }  # fmt: skip
    # it lists the transactions prefix (a put whose event was lost) and nothing else
    (listing,) = [s for s in found if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["inputs/transactions/*"]}}


def test_detector_reads_only_importance_and_chunks(default_synth: Synth) -> None:
    stack = default_synth.stack
    bucket = logical_id(default_synth, stack.storage.bucket)
    found = s3_statements(statements(default_synth, stack.detector.lambda_.role))
    assert {s["Sid"] for s in found} == {
        "ReadImportance",
        "ReadChunks",
        "ListChunks",
        "WriteDetectionsAndRejects",
    }
    assert by_sid(found, "ReadImportance") == {
        "Sid": "ReadImportance",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": objects_arn(bucket, "inputs/importance/"),
    }
    assert by_sid(found, "ReadChunks") == {
        "Sid": "ReadChunks",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": objects_arn(bucket, "chunks/"),
    }
    assert by_sid(found, "ListChunks") == {
        "Sid": "ListChunks",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": get_att(bucket, "Arn"),
        "Condition": {"StringLike": {"s3:prefix": ["chunks/*"]}},
    }
    write = by_sid(found, "WriteDetectionsAndRejects")
    assert write["Action"] == "s3:PutObject"
    assert "inputs/transactions/" not in json.dumps(found)


@pytest.mark.parametrize(
    "prefix, allowed",
    [
        ("chunks/", True),  # streams: list chunks/ with delimiter "/"
        ("chunks/bs140513_032310/", True),  # chunks of a stream, from the applied pointer
        ("chunks/bs140513_032310/chunk_000042.csv", True),
        ("", False),
        ("inputs/", False),
        ("detections/", False),
    ],
)
def test_the_list_condition_admits_the_detectors_listings_only(
    default_synth: Synth, prefix: str, allowed: bool
) -> None:
    found = statements(default_synth, default_synth.stack.detector.lambda_.role)
    patterns = by_sid(found, "ListChunks")["Condition"]["StringLike"]["s3:prefix"]
    assert any(fnmatch.fnmatchcase(prefix, p) for p in patterns) is allowed


@pytest.mark.parametrize("engine", ["inline", "spark"])
def test_no_role_may_read_the_whole_inputs_prefix(
    default_synth: Synth, spark_synth: Synth, engine: str
) -> None:
    synth = default_synth if engine == "inline" else spark_synth
    bucket = logical_id(synth, synth.stack.storage.bucket)
    whole = json.dumps(objects_arn(bucket, "inputs/"))
    for _, statement in all_statements(synth):
        assert whole not in json.dumps(statement), statement
        condition = json.dumps(statement.get("Condition", {}))
        assert '"inputs/*"' not in condition, statement


# -- 3. The sweep ---------------------------------------------------------------------------


def sweep_rule(synth: Synth) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (rule_id, rule["Properties"])
        for rule_id, rule in synth.of_type("AWS::Events::Rule").items()
        if "ScheduleExpression" in rule["Properties"]
        and [t["Arn"] for t in rule["Properties"]["Targets"]]
        == [get_att("DetectorFunction", "Arn")]
    ]
    return found


def test_sweep_invokes_the_detector_every_minute_without_retries(default_synth: Synth) -> None:
    rule_id, rule = sweep_rule(default_synth)
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    # the next sweep supersedes a lost one
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    assert "DeadLetterConfig" not in target
    assert not {"Input", "InputPath", "InputTransformer"} & set(target)
    permissions = [
        p["Properties"]
        for p in default_synth.of_type("AWS::Lambda::Permission").values()
        if p["Properties"].get("SourceArn") == get_att(rule_id, "Arn")
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": get_att("DetectorFunction", "Arn"),
            "Principal": "events.amazonaws.com",
            "SourceArn": get_att(rule_id, "Arn"),
        }
    ]


# -- 4. Database roles, IAM authentication, secrets, rotation -------------------------------


def test_one_secret_per_function_role_registered_with_the_proxy(default_synth: Synth) -> None:
    database = default_synth.stack.database
    assert sorted(database.function_secrets) == ["txnpipe_chunker", "txnpipe_detector"]
    (proxy,) = default_synth.of_type("AWS::RDS::DBProxy").values()
    auth = proxy["Properties"]["Auth"]
    assert sorted(a["SecretArn"]["Ref"] for a in auth) == sorted(
        secret_ref(default_synth, s)["Ref"] for s in database.function_secrets.values()
    )
    assert {(a["AuthScheme"], a["IAMAuth"]) for a in auth} == {("SECRETS", "REQUIRED")}
    master = secret_ref(default_synth, database.master_secret)
    assert master not in [a["SecretArn"] for a in auth]  # the proxy knows no master password
    # each secret generates its password, names its role and is attached to the instance
    templates = {
        json.loads(s["Properties"]["GenerateSecretString"]["SecretStringTemplate"])["username"]: s
        for s in default_synth.of_type("AWS::SecretsManager::Secret").values()
    }
    for user in database.function_secrets:
        template = json.loads(
            templates[user]["Properties"]["GenerateSecretString"]["SecretStringTemplate"]
        )
        assert template == {"username": user, "dbname": "txnpipe"}
    attachments = default_synth.of_type("AWS::SecretsManager::SecretTargetAttachment")
    instance = logical_id(default_synth, database.instance)
    assert {a["Properties"]["TargetId"]["Ref"] for a in attachments.values()} == {instance}
    assert len(attachments) == 3


@pytest.mark.parametrize(
    "function, user, other",
    [
        ("chunker", "txnpipe_chunker", "txnpipe_detector"),
        ("detector", "txnpipe_detector", "txnpipe_chunker"),
    ],
)
def test_each_function_may_connect_as_its_own_db_user_only(
    default_synth: Synth, function: str, user: str, other: str
) -> None:
    stack = default_synth.stack
    found = statements(default_synth, getattr(stack, function).lambda_.role)
    connect = [s for s in found if "rds-db:connect" in as_list(s["Action"])]
    assert len(connect) == 1 and as_list(connect[0]["Action"]) == ["rds-db:connect"]
    resource = connect[0]["Resource"]
    rendered = json.dumps(resource)
    assert ":dbuser:" in rendered and rendered.endswith(f'"/{user}"]]}}')
    assert other not in rendered and "*" not in rendered
    # the proxy's resource id, taken from its ARN
    assert logical_id(default_synth, stack.database.proxy) in rendered
    env = default_synth.resources[f"{function.capitalize()}Function"]["Properties"]["Environment"]
    assert env["Variables"]["TXNPIPE_DB_USER"] == user


def test_no_function_reads_any_secret(default_synth: Synth) -> None:
    stack = default_synth.stack
    for function in (stack.chunker, stack.detector):
        found = statements(default_synth, function.lambda_.role)
        assert not {a for a in actions_of(found) if a.startswith("secretsmanager:")}
        props = default_synth.resources[function.lambda_.logical_id]["Properties"]
        assert not [k for k in props["Environment"]["Variables"] if "SECRET" in k]


def test_only_the_migrator_reads_the_master_secret(default_synth: Synth) -> None:
    stack = default_synth.stack
    master = json.dumps(secret_ref(default_synth, stack.database.master_secret))
    migrator_role = ref(logical_id(default_synth, stack.migration.lambda_.role))
    readers = [
        roles
        for roles, statement in all_statements(default_synth)
        if master in json.dumps(statement)
    ]
    assert readers == [[migrator_role]]
    found = statements(default_synth, stack.migration.lambda_.role)
    secret_reads = [
        s for s in found if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))
    ]
    read = {json.dumps(r) for s in secret_reads for r in as_list(s["Resource"])}
    expected = [stack.database.master_secret, *stack.database.function_secrets.values()]
    assert read == {json.dumps(secret_ref(default_synth, s)) for s in expected}
    assert actions_of(secret_reads) == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }


def test_migration_runs_as_a_custom_resource_with_the_schema_hash(default_synth: Synth) -> None:
    stack = default_synth.stack
    (resource,) = default_synth.of_type(RESOURCE_TYPE).values()
    props = resource["Properties"]
    framework = stack.migration.provider.node.find_child("framework-onEvent")
    assert props["ServiceToken"] == get_att(logical_id(default_synth, framework), "Arn")
    assert props["SchemaHash"] == schema_hash() == schema_hash(bundling.CORE_DIR / "postgres")
    assert props["MasterSecretArn"] == secret_ref(default_synth, stack.database.master_secret)
    assert props["RoleSecretArns"] == {
        user: secret_ref(default_synth, secret)
        for user, secret in stack.database.function_secrets.items()
    }
    # the framework calls exactly the migrator
    framework_props = default_synth.resources[logical_id(default_synth, framework)]["Properties"]
    assert framework_props["Environment"]["Variables"]["USER_ON_EVENT_FUNCTION_ARN"] == get_att(
        "MigratorFunction", "Arn"
    )
    migrator = default_synth.resources["MigratorFunction"]["Properties"]
    assert migrator["Handler"] == "handler.handler"
    assert migrator["VpcConfig"]["SubnetIds"] == isolated_subnet_ids(default_synth)
    instance = logical_id(default_synth, stack.database.instance)
    assert migrator["Environment"]["Variables"] == {
        # the instance itself, not the proxy (which has no master credentials)
        "TXNPIPE_DB_HOST": get_att(instance, "Endpoint.Address"),
        "TXNPIPE_DB_PORT": get_att(instance, "Endpoint.Port"),
        "TXNPIPE_DB_NAME": "txnpipe",
        "TXNPIPE_DB_SSLMODE": "verify-full",
        "TXNPIPE_DB_SSLROOTCERT": "/var/task/certs/rds-global-bundle.pem",
    }
    assert migrator["Timeout"] <= 15 * 60
    # the network path exists before the first run
    assert (
        logical_id(default_synth, stack.database.instance_security_group) in resource["DependsOn"]
    )


def test_functions_and_rotations_wait_for_the_migration(default_synth: Synth) -> None:
    (migration_id,) = default_synth.of_type(RESOURCE_TYPE)
    for function in ("ChunkerFunction", "DetectorFunction"):
        assert migration_id in default_synth.resources[function]["DependsOn"]
    schedules = default_synth.of_type("AWS::SecretsManager::RotationSchedule")
    assert len(schedules) == 2
    for schedule in schedules.values():
        assert migration_id in schedule["DependsOn"]


def test_schema_hash_follows_the_sql_files(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE a ();\n")
    (tmp_path / "roles.sql").write_text("GRANT ...;\n")
    first = schema_hash(tmp_path)
    (tmp_path / "notes.txt").write_text("not sql")
    (tmp_path / "postgres.py").write_text("x = 1")
    assert schema_hash(tmp_path) == first
    (tmp_path / "roles.sql").write_text("GRANT .... ;\n")
    assert schema_hash(tmp_path) != first
    second = schema_hash(tmp_path)
    (tmp_path / "roles.sql").rename(tmp_path / "grants.sql")
    assert schema_hash(tmp_path) != second


def test_function_secrets_rotate_in_the_vpc_and_the_master_does_not(default_synth: Synth) -> None:
    database = default_synth.stack.database
    schedules = [
        s["Properties"]
        for s in default_synth.of_type("AWS::SecretsManager::RotationSchedule").values()
    ]
    assert sorted(json.dumps(s["SecretId"]) for s in schedules) == sorted(
        json.dumps(secret_ref(default_synth, s)) for s in database.function_secrets.values()
    )
    first, second = isolated_subnet_ids(default_synth)
    subnets = {"Fn::Join": ["", [first, ",", second]]}
    rotation_sg = get_att(logical_id(default_synth, database.rotation_security_group), "GroupId")
    for schedule in schedules:
        hosted = schedule["HostedRotationLambda"]
        assert hosted["RotationType"] == "PostgreSQLSingleUser"
        assert hosted["VpcSubnetIds"] == subnets
        assert hosted["VpcSecurityGroupIds"] == rotation_sg
        assert schedule["RotationRules"] == {"ScheduleExpression": "rate(30 days)"}
    # hosted rotation is a Secrets Manager transform of the template
    assert any(
        t.startswith("AWS::SecretsManager-")
        for t in as_list(default_synth.template_json["Transform"])
    )


# -- 5. Security group egress ---------------------------------------------------------------


def egress_rules(synth: Synth, security_group: Any) -> set[tuple[Any, ...]]:
    """(protocol, from, to, kind, destination) of every egress rule of ``security_group``,
    inline or standalone, without aws-cdk-lib's no-traffic placeholder."""
    group_id = logical_id(synth, security_group)
    inline = synth.resources[group_id]["Properties"].get("SecurityGroupEgress", [])
    standalone = [
        rule["Properties"]
        for rule in synth.of_type("AWS::EC2::SecurityGroupEgress").values()
        if rule["Properties"]["GroupId"] == get_att(group_id, "GroupId")
    ]
    rules = set()
    for rule in [*inline, *standalone]:
        if rule.get("CidrIp") == "255.255.255.255/32" and rule["IpProtocol"] == "icmp":
            continue
        if "DestinationSecurityGroupId" in rule:
            kind, destination = "group", rule["DestinationSecurityGroupId"]["Fn::GetAtt"][0]
        elif "DestinationPrefixListId" in rule:
            kind, destination = "prefix-list", json.dumps(rule["DestinationPrefixListId"])
        else:
            kind, destination = "cidr", rule["CidrIp"]
        rules.add((rule["IpProtocol"], rule["FromPort"], rule["ToPort"], kind, destination))
    return rules


def lookup_id(synth: Synth) -> str:
    """The logical id of the prefix-list lookup (an AwsCustomResource wraps a CustomResource)."""
    custom_resource = synth.stack.network.s3_prefix_list.lookup.node.default_child
    return logical_id(synth, custom_resource)


def s3_prefix_list(synth: Synth) -> str:
    return json.dumps(get_att(lookup_id(synth), "PrefixLists.0.PrefixListId"))


def test_lambda_security_groups_reach_only_their_peers(default_synth: Synth) -> None:
    stack = default_synth.stack
    proxy = logical_id(default_synth, stack.database.proxy_security_group)
    instance = logical_id(default_synth, stack.database.instance_security_group)
    endpoints_sg = logical_id(default_synth, stack.network.endpoint_security_group)
    s3 = ("tcp", 443, 443, "prefix-list", s3_prefix_list(default_synth))
    assert egress_rules(default_synth, stack.chunker.lambda_.security_group) == {
        ("tcp", 5432, 5432, "group", proxy), s3}  # fmt: skip
    # the detector also puts an event per detection file, through the EventBridge endpoint
    assert egress_rules(default_synth, stack.detector.lambda_.security_group) == {
        ("tcp", 5432, 5432, "group", proxy), s3, ("tcp", 443, 443, "group", endpoints_sg)}  # fmt: skip
    assert egress_rules(default_synth, stack.migration.lambda_.security_group) == {
        ("tcp", 5432, 5432, "group", instance),
        ("tcp", 443, 443, "group", endpoints_sg),
    }
    assert egress_rules(default_synth, stack.database.rotation_security_group) == {
        ("tcp", 5432, 5432, "group", instance),
        ("tcp", 443, 443, "group", endpoints_sg),
    }


def test_spark_detector_also_reaches_the_glue_endpoint(spark_synth: Synth) -> None:
    stack = spark_synth.stack
    endpoints_sg = logical_id(spark_synth, stack.network.endpoint_security_group)
    assert ("tcp", 443, 443, "group", endpoints_sg) in egress_rules(
        spark_synth, stack.detector.lambda_.security_group
    )
    assert ("tcp", 443, 443, "group", endpoints_sg) not in egress_rules(
        spark_synth, stack.chunker.lambda_.security_group
    )


@pytest.mark.parametrize("engine", ["inline", "spark"])
def test_no_security_group_falls_back_to_allow_all_egress(
    default_synth: Synth, spark_synth: Synth, engine: str
) -> None:
    """A group without inline egress would get EC2's default allow-all rule at creation."""
    synth = default_synth if engine == "inline" else spark_synth
    groups = synth.of_type("AWS::EC2::SecurityGroup")
    assert len(groups) >= 7
    for group_id, group in groups.items():
        assert group["Properties"].get("SecurityGroupEgress"), group_id
    rules = [r for g in groups.values() for r in g["Properties"]["SecurityGroupEgress"]]
    rules += [r["Properties"] for r in synth.of_type("AWS::EC2::SecurityGroupEgress").values()]
    for rule in rules:
        assert rule.get("CidrIp") != "0.0.0.0/0" and rule["IpProtocol"] != "-1", rule


def test_s3_prefix_list_is_looked_up_at_deploy_time(default_synth: Synth) -> None:
    resource = default_synth.resources[lookup_id(default_synth)]
    assert resource["Type"] == "Custom::AWS"
    (s3_endpoint,) = endpoints(default_synth, "s3").values()
    for phase in ("Create", "Update"):
        parts = resource["Properties"][phase]["Fn::Join"][1]
        rendered = "".join(p if isinstance(p, str) else "<region>" for p in parts)
        call = json.loads(rendered)
        assert (call["service"], call["action"]) == ("EC2", "describeManagedPrefixLists")
        # the prefix list named after the gateway endpoint's own service
        service_parts = s3_endpoint["ServiceName"]["Fn::Join"][1]
        service = "".join(p if isinstance(p, str) else "<region>" for p in service_parts)
        assert call["parameters"] == {
            "Filters": [{"Name": "prefix-list-name", "Values": [service]}]
        }
        assert service == "com.amazonaws.<region>.s3"
    # its function may do nothing else
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for policy_id, p in default_synth.of_type("AWS::IAM::Policy").items()
        if policy_id in resource["DependsOn"]
    ]
    assert actions_of(policy) == {"ec2:DescribeManagedPrefixLists"}


# -- 6. VPC endpoint policies ---------------------------------------------------------------


def test_s3_endpoint_admits_only_the_data_bucket(default_synth: Synth) -> None:
    bucket = logical_id(default_synth, default_synth.stack.storage.bucket)
    (props,) = endpoints(default_synth, "s3").values()
    assert props["VpcEndpointType"] == "Gateway"
    (statement,) = props["PolicyDocument"]["Statement"]
    assert statement == {
        "Sid": "DataBucketOnly",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": sorted(S3_ENDPOINT_ACTIONS),
        "Resource": [get_att(bucket, "Arn"), {"Fn::Join": ["", [get_att(bucket, "Arn"), "/*"]]}],
    }


@pytest.mark.parametrize("engine", ["inline", "spark"])
def test_s3_endpoint_actions_are_exactly_what_the_vpc_functions_use(
    default_synth: Synth, spark_synth: Synth, engine: str
) -> None:
    synth = default_synth if engine == "inline" else spark_synth
    stack = synth.stack
    used = set()
    for function in (stack.chunker, stack.detector, stack.migration):
        found = statements(synth, function.lambda_.role)
        used |= {a for a in actions_of(found) if a.startswith("s3:")}
    assert used == set(S3_ENDPOINT_ACTIONS)


def test_secrets_manager_endpoint_admits_only_the_stack_secrets(default_synth: Synth) -> None:
    database = default_synth.stack.database
    (props,) = endpoints(default_synth, "secretsmanager").values()
    found = props["PolicyDocument"]["Statement"]
    assert {s["Sid"] for s in found} == {
        "StackDatabaseSecretsOnly",
        "RotateFunctionSecrets",
        "GeneratePasswords",
    }
    everything = [database.master_secret, *database.function_secrets.values()]
    functions = list(database.function_secrets.values())
    read = by_sid(found, "StackDatabaseSecretsOnly")
    assert sorted(as_list(read["Action"])) == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
    ]
    assert sorted(map(json.dumps, read["Resource"])) == sorted(
        json.dumps(secret_ref(default_synth, s)) for s in everything
    )
    rotate = by_sid(found, "RotateFunctionSecrets")
    assert sorted(as_list(rotate["Action"])) == [
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ]
    assert sorted(map(json.dumps, rotate["Resource"])) == sorted(
        json.dumps(secret_ref(default_synth, s)) for s in functions
    )
    # the one call that takes no resource, and reveals nothing
    assert by_sid(found, "GeneratePasswords")["Action"] == "secretsmanager:GetRandomPassword"
    assert by_sid(found, "GeneratePasswords")["Resource"] == "*"
    for statement in found:
        assert statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": "*"}


# -- 7. TLS ---------------------------------------------------------------------------------


def test_functions_verify_the_proxy_and_the_migrator_the_instance(default_synth: Synth) -> None:
    stack = default_synth.stack
    for function in ("ChunkerFunction", "DetectorFunction"):
        env = default_synth.resources[function]["Properties"]["Environment"]["Variables"]
        assert env["TXNPIPE_DB_SSLMODE"] == "verify-full"
        assert env["TXNPIPE_DB_SSLROOTCERT"] == bundling.sslrootcert_path(
            bundling.AMAZON_TRUST_ROOTS
        )
        assert env["TXNPIPE_DB_HOST"] == get_att(
            logical_id(default_synth, stack.database.proxy), "Endpoint"
        )
    assert stack.chunker.lambda_.ca_bundle == bundling.AMAZON_TRUST_ROOTS
    assert stack.detector.lambda_.ca_bundle == bundling.AMAZON_TRUST_ROOTS
    assert stack.migration.lambda_.ca_bundle == bundling.RDS_CA_BUNDLE
    (proxy,) = default_synth.of_type("AWS::RDS::DBProxy").values()
    assert proxy["Properties"]["RequireTLS"] is True
    # the instance presents a certificate of a CA the migrator's bundle carries
    (instance,) = default_synth.of_type("AWS::RDS::DBInstance").values()
    assert instance["Properties"]["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"



def test_the_detector_may_put_events_on_the_stacks_bus_only(default_synth: Synth) -> None:
    stack = default_synth.stack
    bus = get_att(logical_id(default_synth, stack.detection_events.bus), "Arn")
    found = statements(default_synth, stack.detector.lambda_.role)
    puts = [s for s in found if "events:PutEvents" in as_list(s["Action"])]
    assert [(s["Action"], s["Resource"]) for s in puts] == [("events:PutEvents", bus)]
    for role in (stack.chunker.lambda_.role, stack.migration.lambda_.role):
        assert not [a for a in actions_of(statements(default_synth, role)) if a.startswith("events:")]
    (props,) = endpoints(default_synth, "events").values()
    assert props["PolicyDocument"]["Statement"] == [{
        "Sid": "TxnPipeBusOnly", "Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": "events:PutEvents", "Resource": bus}]  # fmt: skip
