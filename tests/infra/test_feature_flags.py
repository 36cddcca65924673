"""Security-relevant properties are set in the constructs, not left to cdk.json's feature flags;
and cdk.json's flags are the ones aws-cdk-lib recommends for its version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.synth import REPO, Synth, cdk_json_context, is_feature_flag, synthesize

# Differences a synthesis without cdk.json's flags may show, each with the flag behind it and
# why it is no security property:
# - the log groups aws-cdk-lib creates for its own helper functions (the AwsCustomResource
#   singleton, the custom-resource provider framework) with @aws-cdk/aws-lambda:
#   useCdkManagedLogGroup; without it Lambda creates the same groups at the first invocation.
#   The stack's own functions have their log groups set explicitly (infra/functions.py).
HELPER_LOG_GROUP_PATHS = (
    "TxnPipe/AWS679f53fac002430cb0da5b7982bd2287/LogGroup/Resource",
    "TxnPipe/Migration/Provider/framework-onEvent/LogGroup/Resource",
)
# - the secrets' resource policies (the same statements) attached to the secret through its
#   target attachment or directly, under another logical id
#   (@aws-cdk/aws-secretsmanager:useAttachedSecretResourcePolicyForSecretTargetAttachments);
# - the RDS Proxy's generated name (@aws-cdk/aws-rds:databaseProxyUniqueResourceName);
# - IAM statements merged or not (@aws-cdk/aws-iam:minimizePolicies): compared as the set of
#   (effect, principal, action, resource, condition) they allow or deny.
POLICY_PROPERTIES = ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument", "ResourcePolicy")


@pytest.fixture(scope="module")
def flagless(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack with txnpipe's context but none of cdk.json's feature flags, cdk-nag on."""
    result = synthesize(tmp_path_factory.mktemp("cdk-flagless"), nag=True, flags=False)
    assert result.error is None, f"synth failed: {result.error}\n{result.violations()}"
    return result


@pytest.fixture(scope="module")
def flagless_spark(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    result = synthesize(
        tmp_path_factory.mktemp("cdk-flagless-spark"),
        flags=False,
        upgradeEngine="spark",
        removalPolicy="destroy",
    )
    assert result.error is None, f"synth failed: {result.error}"
    return result


@pytest.fixture(scope="module")
def flagged_spark(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    result = synthesize(
        tmp_path_factory.mktemp("cdk-flagged-spark"), upgradeEngine="spark", removalPolicy="destroy"
    )
    assert result.error is None, f"synth failed: {result.error}"
    return result


def statements(document: dict[str, Any]) -> set[tuple[str, ...]]:
    """A policy document as the set of single (effect, principal, action, resource, condition)
    grants it makes, whatever the statements' grouping, order and Sids."""
    atoms = set()
    for statement in document["Statement"]:
        actions = statement.get("Action", statement.get("NotAction"))
        resources = statement.get("Resource", statement.get("NotResource", "*"))
        for action in actions if isinstance(actions, list) else [actions]:
            for resource in resources if isinstance(resources, list) else [resources]:
                atoms.add(
                    (
                        statement["Effect"],
                        json.dumps(statement.get("Principal"), sort_keys=True),
                        action,
                        json.dumps(resource, sort_keys=True),
                        json.dumps(statement.get("Condition"), sort_keys=True),
                    )
                )
    return atoms


def comparable(synth: Synth) -> dict[str, Any]:
    """The template's resources as compared: policies as grant sets, the helpers' log groups,
    the proxy's name and the secrets' resource policies set aside (see above)."""
    attachments = {  # secret target attachment -> its secret
        name: resource["Properties"]["SecretId"]
        for name, resource in synth.of_type("AWS::SecretsManager::SecretTargetAttachment").items()
    }
    result: dict[str, Any] = {}
    secret_policies = []
    for name, resource in synth.resources.items():
        path = resource.get("Metadata", {}).get("aws:cdk:path", "")
        if path in HELPER_LOG_GROUP_PATHS:
            continue
        properties = dict(resource.get("Properties", {}))
        for key in POLICY_PROPERTIES:
            if isinstance(properties.get(key), dict) and "Statement" in properties[key]:
                properties[key] = sorted(statements(properties[key]))
        if resource["Type"] == "AWS::SecretsManager::ResourcePolicy":
            secret = properties["SecretId"]
            properties["SecretId"] = attachments.get(secret.get("Ref"), secret)
            secret_policies.append(json.dumps(properties, sort_keys=True))
            continue
        if resource["Type"] == "AWS::RDS::DBProxy":
            properties.pop("DBProxyName")
        result[name] = {**resource, "Properties": properties}
        result[name].get("Metadata", {}).pop("aws:cdk:path", None)
    result["secret resource policies"] = sorted(secret_policies)
    return result


def assert_same_but_the_known_differences(flagged: Synth, flagless: Synth) -> None:
    a, b = comparable(flagged), comparable(flagless)
    assert sorted(set(a) ^ set(b)) == []
    different = {name for name in a if a[name] != b[name]}
    assert different == set(), {name: (a[name], b[name]) for name in sorted(different)}


def test_without_feature_flags_the_stack_is_the_same(default_synth: Synth, flagless: Synth) -> None:
    """Every resource and property the same with and without cdk.json's flags, but the
    differences listed above (none of them a security property); and cdk-nag passes."""
    assert_same_but_the_known_differences(default_synth, flagless)
    assert flagless.violations() == []


def test_without_feature_flags_the_spark_stack_is_the_same(
    flagged_spark: Synth, flagless_spark: Synth
) -> None:
    """The same for the Glue variant (KMS key, security configuration, auto-delete helper)."""
    assert_same_but_the_known_differences(flagged_spark, flagless_spark)


def security_properties(synth: Synth) -> dict[str, Any]:
    """The security-relevant properties named one by one, as the tests below check them."""
    buckets = {
        name: {
            key: bucket["Properties"].get(key)
            for key in (
                "AccessControl",
                "BucketEncryption",
                "OwnershipControls",
                "PublicAccessBlockConfiguration",
                "LoggingConfiguration",
                "VersioningConfiguration",
            )
        }
        for name, bucket in synth.of_type("AWS::S3::Bucket").items()
    }
    bucket_policies = {
        name: statements(policy["Properties"]["PolicyDocument"])
        for name, policy in synth.of_type("AWS::S3::BucketPolicy").items()
    }
    return {"buckets": buckets, "bucket policies": bucket_policies}


def test_buckets_set_their_security_properties_themselves(flagless: Synth) -> None:
    """Without any flag: no ACL, ACLs disabled, SSE-S3, public access blocked, TLS only, and the
    access logs and flow logs delivered under a bucket policy."""
    props = security_properties(flagless)
    assert len(props["buckets"]) == 2
    for name, bucket in props["buckets"].items():
        assert bucket["AccessControl"] is None, name
        assert bucket["OwnershipControls"] == {
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
        }
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    for name, grants in props["bucket policies"].items():
        denied = {(principal, action) for effect, principal, action, _, condition in grants
                  if effect == "Deny" and "SecureTransport" in condition}  # fmt: skip
        assert denied == {('{"AWS": "*"}', "s3:*")}, name
    log_bucket = flagless.stack.get_logical_id(flagless.stack.storage.log_bucket.node.default_child)
    data_bucket = flagless.stack.get_logical_id(flagless.stack.storage.bucket.node.default_child)
    assert props["buckets"][data_bucket]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": log_bucket},
        "LogFilePrefix": "data-bucket/",
    }
    (log_policy,) = [
        grants
        for name, policy in flagless.of_type("AWS::S3::BucketPolicy").items()
        if policy["Properties"]["Bucket"] == {"Ref": log_bucket}
        for grants in [props["bucket policies"][name]]
    ]
    writers = {(principal, action) for effect, principal, action, _, _ in log_policy
               if effect == "Allow"}  # fmt: skip
    assert writers == {
        ('{"Service": "logging.s3.amazonaws.com"}', "s3:PutObject"),
        ('{"Service": "delivery.logs.amazonaws.com"}', "s3:PutObject"),
        ('{"Service": "delivery.logs.amazonaws.com"}', "s3:GetBucketAcl"),
        ('{"Service": "delivery.logs.amazonaws.com"}', "s3:ListBucket"),
    }


def test_the_default_security_group_is_restricted_without_the_flag(flagless: Synth) -> None:
    (restrict,) = flagless.of_type("Custom::VpcRestrictDefaultSG").values()
    vpc = flagless.stack.get_logical_id(flagless.stack.network.vpc.node.default_child)
    assert restrict["Properties"]["DefaultSecurityGroupId"] == {
        "Fn::GetAtt": [vpc, "DefaultSecurityGroup"]
    }


def clean_env(**extra: str) -> dict[str, str]:
    from tests.infra.test_app import clean_env as app_clean_env

    return app_clean_env(**extra)


def test_app_synthesizes_without_cdk_json(tmp_path: Path) -> None:
    """`CDK_OUTDIR=... python app.py`, how the CLI starts the app but with no context at all
    (no cdk.json, no feature flag): it synthesizes, cdk-nag included."""
    result = subprocess.run(
        [sys.executable, "app.py"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        # no bundling: it would only add pip downloads
        env=clean_env(
            CDK_OUTDIR=str(tmp_path),
            CDK_CONTEXT_JSON=json.dumps({"aws:cdk:bundling-stacks": []}),
        ),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    template = json.loads((tmp_path / "TxnPipe.template.json").read_text())
    assert {"ChunkerFunction", "DetectorFunction", "MigratorFunction"} <= set(template["Resources"])
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert report["pluginReports"] == []


def test_cdk_json_flags_are_current_for_the_locked_aws_cdk_lib(default_synth: Synth) -> None:
    """aws-cdk-lib's own report of its flags (manifest.json): with cdk.json's context, every
    flag it knows has its recommended value, and cdk.json names no flag it does not know."""
    manifest = json.loads((default_synth.outdir / "manifest.json").read_text())
    (report,) = [
        artifact["properties"]
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "cdk:feature-flag-report"
    ]
    assert report["module"] == "aws-cdk-lib"
    flags = report["flags"]

    def effective(flag: dict[str, Any]) -> Any:
        if "userValue" in flag:
            return flag["userValue"]
        return flag.get("unconfiguredBehavesLike", {}).get("v2", False)

    off = {
        name: flag for name, flag in flags.items() if effective(flag) != flag["recommendedValue"]
    }
    assert off == {}
    unknown = [k for k in cdk_json_context() if is_feature_flag(k) and k not in flags]
    assert unknown == []
