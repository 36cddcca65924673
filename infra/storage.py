"""Storage: the data bucket (inputs, chunks, detections, rejects, Glue results) and its log bucket.

Every security-relevant property is set here, none is left to a feature flag of cdk.json:
public access blocked, SSE-S3, TLS only, ACLs disabled (``BucketOwnerEnforced``), and server
access logs delivered under a bucket policy for ``logging.s3.amazonaws.com`` limited to the data
bucket and this account. (Passed as ``server_access_logs_bucket``, aws-cdk-lib would write that
policy only with ``@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy``; without the flag it turns
on the ``LogDeliveryWrite`` ACL instead, which contradicts ``BucketOwnerEnforced``.)
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import (
    ATHENA_PREFIX,
    CHUNKS_PREFIX,
    DETECTIONS_PREFIX,
    GLUE_PREFIX,
    REJECTS_PREFIX,
    TxnPipeConfig,
)

# Where the data bucket's server access logs land in the log bucket.
ACCESS_LOGS_PREFIX = "data-bucket/"


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: TxnPipeConfig) -> None:
        super().__init__(scope, construct_id)
        removal = cdk.RemovalPolicy.RETAIN if config.retain else cdk.RemovalPolicy.DESTROY
        auto_delete = not config.retain

        # Target of the data bucket's server access logs and of the VPC flow logs.
        # Log delivery only supports SSE-S3 on the target bucket. (cdk-nag's S1 does not ask a
        # log-delivery bucket to log itself.)
        self.log_bucket = s3.Bucket(
            self,
            "LogBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=cdk.Duration.days(365))],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )

        self.bucket = s3.Bucket(
            self,
            "DataBucket",
            bucket_name=config.bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=_lifecycle_rules(config),
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )
        self._log_access_to(self.log_bucket, ACCESS_LOGS_PREFIX)

    def _log_access_to(self, target: s3.Bucket, prefix: str) -> None:
        """Server access logs of the data bucket into ``target`` under ``prefix``, delivered by
        the S3 logging service under a bucket policy (what the flag above would do)."""
        data = self.bucket.node.default_child
        assert isinstance(data, s3.CfnBucket)
        data.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
            destination_bucket_name=target.bucket_name, log_file_prefix=prefix
        )
        target.add_to_resource_policy(
            iam.PolicyStatement(
                effect=iam.Effect.ALLOW,
                principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[target.arn_for_objects(f"{prefix}*")],
                conditions={
                    "ArnLike": {"aws:SourceArn": self.bucket.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account},
                },
            )
        )

    def objects(self, prefix: str) -> str:
        """ARN pattern of every object under ``prefix`` (``arn:...:bucket/prefix*``)."""
        return self.bucket.arn_for_objects(f"{prefix}*")


def _lifecycle_rules(config: TxnPipeConfig) -> list[s3.LifecycleRule]:
    """Data that ages out: chunks, the batch engine's scratch and the query results after
    ``scratchExpirationDays`` (a stream's chunks are what its detections were made from: an
    ended stream no longer needs them); detections and rejects never, unless
    ``outputsExpirationDays`` says so; inputs never (a stream's version pins them). Superseded
    versions (chunks and detections are rewritten on retries, same key and bytes; an input put
    again) go after 30 days."""
    scratch = cdk.Duration.days(config.scratch_expiration_days)
    rules = [
        s3.LifecycleRule(id="expire-noncurrent-versions",
                         noncurrent_version_expiration=cdk.Duration.days(30)),
        s3.LifecycleRule(id="abort-incomplete-multipart-uploads",
                         abort_incomplete_multipart_upload_after=cdk.Duration.days(7)),
        *(s3.LifecycleRule(id=f"expire-{prefix.rstrip('/')}", prefix=prefix, expiration=scratch)
          for prefix in (CHUNKS_PREFIX, GLUE_PREFIX, ATHENA_PREFIX)),
    ]  # fmt: skip
    if config.outputs_expiration_days is not None:
        outputs = cdk.Duration.days(config.outputs_expiration_days)
        rules += [s3.LifecycleRule(id=f"expire-{prefix.rstrip('/')}", prefix=prefix,
                                   expiration=outputs)
                  for prefix in (DETECTIONS_PREFIX, REJECTS_PREFIX)]  # fmt: skip
    return rules
