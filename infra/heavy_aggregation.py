"""Heavy aggregation: the Glue PySpark job that computes PatId1's percentiles over chunk ranges.

The job (Glue 5.0, ``glueetl``, Python 3.11) runs ``glue_jobs/upgrade_percentiles.py``, uploaded
as an S3 asset. The script imports the core package (``txnpipe.batch.spark_engine`` and, through
it, the detector's own parser, settings and weights), which reaches Glue with
``--extra-py-files``: a second asset, a zip whose root holds ``txnpipe/``, written at synth time
without Docker by :func:`infra.bundling.write_core_zip` (byte-reproducible, so an unchanged core
keeps its asset hash). PySpark and pyarrow, the core's only other imports there, come with
Glue 5.0.

Deployed with ``txnpipe:upgradeEngine=spark`` only (the stack builds no part of it for
``inline``). The job reads ``chunks/*``, the importance files (``inputs/importance/*``) and
``glue/*``, and writes its results under ``glue/``; it never touches PostgreSQL, so it runs
outside the VPC. Only the detector may start, poll and list runs of this job (through the
VPC's Glue endpoint, whose policy admits this job only); the job's terminal state changes are
routed back to the detector by an EventBridge rule.

Logs and (unused) job bookmarks are encrypted with a customer-managed KMS key through a Glue
security configuration.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import bundling
from infra.config import CHUNKS_PREFIX, GLUE_PREFIX, TxnPipeConfig
from infra.nag import acknowledge, iam5_resource
from infra.network import Network
from infra.storage import Storage

GLUE_VERSION = "5.0"
SCRIPT_PATH = bundling.PROJECT_ROOT / "glue_jobs" / "upgrade_percentiles.py"
# Where the core zip is written before CDK stages it as an asset: a folder of the cloud
# assembly (cdk.out), so that it lives as long as the assembly that points at it.
LIBRARIES_BUILD_DIR = "txnpipe-build"
LIBRARIES_ZIP_NAME = "txnpipe-glue-libs.zip"
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR")
# What the detector does with the job: start a run, poll it, and list runs to find the one in
# flight after StartJobRun refused a second (ConcurrentRunsExceededException).
JOB_RUN_ACTIONS = ("glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns")


class HeavyAggregation(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TxnPipeConfig,
        storage: Storage,
        network: Network,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.job_name = config.glue_job_name
        self.job_arn = stack.format_arn(service="glue", resource="job", resource_name=self.job_name)
        glue_log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws-glue/*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

        self.script = s3_assets.Asset(self, "Script", path=str(SCRIPT_PATH))
        # The core package for --extra-py-files (the script imports txnpipe.*).
        self.libraries_zip = bundling.write_core_zip(
            Path(cdk.Stage.of(self).outdir) / LIBRARIES_BUILD_DIR / LIBRARIES_ZIP_NAME
        )
        self.libraries = s3_assets.Asset(self, "Libraries", path=str(self.libraries_zip))

        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            description="txnpipe Glue job: CloudWatch Logs and job bookmark encryption",
            removal_policy=cdk.RemovalPolicy.RETAIN if config.retain else cdk.RemovalPolicy.DESTROY,
        )
        # CloudWatch Logs encrypts the job's log groups with the key (Glue associates it).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForGlueLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": glue_log_groups}},
            )
        )
        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=f"{config.stack_name}-glue-encryption",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=self.key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=self.key.key_arn
                ),
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(s3_encryption_mode="SSE-S3")
                ],
            ),
        )

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="txnpipe Glue job: read chunks and importance, write glue/ results",
        )
        # GetObject on exactly the two asset objects. (Asset.grant_read would grant s3:GetObject*,
        # s3:GetBucket* and s3:List* on every object of the account's CDK assets bucket.)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadScriptAndLibraries",
                actions=["s3:GetObject"],
                resources=[
                    asset.bucket.arn_for_objects(asset.s3_object_key)
                    for asset in (self.script, self.libraries)
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadChunksAndImportance",
                actions=["s3:GetObject"],
                resources=[
                    storage.objects(CHUNKS_PREFIX),
                    storage.objects(config.importance_prefix),
                    storage.objects(GLUE_PREFIX),
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteResults",
                actions=["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[storage.objects(GLUE_PREFIX)],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListOwnPrefixes",
                actions=["s3:ListBucket"],
                resources=[storage.bucket.bucket_arn],
                conditions={
                    "StringLike": {
                        "s3:prefix": [
                            f"{CHUNKS_PREFIX}*",
                            f"{config.importance_prefix}*",
                            f"{GLUE_PREFIX}*",
                        ]
                    }
                },
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteEncryptedLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:AssociateKmsKey",
                ],
                resources=[glue_log_groups],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="UseJobKey",
                actions=["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[self.key.key_arn],
            )
        )
        for prefix, reason in (
            (
                CHUNKS_PREFIX,
                "the job reads every chunk of a range; chunk keys are only known at run time",
            ),
            (config.importance_prefix, "the job reads the importance file under this prefix"),
            (GLUE_PREFIX, "Spark writes and cleans up part files with generated names under glue/"),
        ):
            acknowledge(
                self.role,
                iam5_resource(stack, storage.objects(prefix)),
                f"Object actions scoped to one prefix of the data bucket: {reason}.",
            )
        acknowledge(
            self.role,
            iam5_resource(stack, glue_log_groups),
            "Glue names the job's log groups and streams at run time (under /aws-glue/, suffixed "
            "with the security configuration and role); the wildcard is limited to that prefix.",
        )

        self.job = glue.CfnJob(
            self,
            "Job",
            name=self.job_name,
            description="txnpipe PatId1 (UPGRADE) percentiles over a range of chunks",
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=self.script.s3_object_url
            ),
            worker_type=config.glue_worker_type,
            number_of_workers=config.glue_number_of_workers,
            timeout=config.glue_timeout_minutes,
            max_retries=0,  # the detector decides what a failed run means
            execution_property=glue.CfnJob.ExecutionPropertyProperty(
                max_concurrent_runs=config.glue_max_concurrent_runs
            ),
            security_configuration=self.security_configuration.ref,
            default_arguments={
                "--job-language": "python",
                "--job-bookmark-option": "job-bookmark-disable",
                "--extra-py-files": self.libraries.s3_object_url,
                "--TempDir": f"s3://{storage.bucket.bucket_name}/{GLUE_PREFIX}tmp/",
                "--txnpipe_bucket": storage.bucket.bucket_name,
                "--txnpipe_chunks_prefix": CHUNKS_PREFIX,
                "--txnpipe_inputs_prefix": config.inputs_prefix,
                "--txnpipe_output_prefix": GLUE_PREFIX,
                **{
                    "--" + name.lower(): value  # --txnpipe_<setting>
                    for name, value in config.settings_env.items()
                },
            },
        )
        # The role's policy must exist before the first run can be started.
        default_policy = self.role.node.try_find_child("DefaultPolicy")
        if default_policy is not None:
            self.job.node.add_dependency(default_policy)

        network.allow_glue_job(self.job_arn, JOB_RUN_ACTIONS)

    def grant_start_and_poll(self, grantee: iam.IGrantable) -> None:
        """glue:StartJobRun, glue:GetJobRun and glue:GetJobRuns on this job only."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(JOB_RUN_ACTIONS), resource_arns=[self.job_arn]
        )

    def notify_state_changes(
        self, function: lambda_.IFunction, dead_letter_queue: sqs.IQueue
    ) -> events.Rule:
        """Route this job's terminal "Glue Job State Change" events to ``function``."""
        return events.Rule(
            self,
            "StateChangeRule",
            description=f"txnpipe: terminal state changes of Glue job {self.job_name} to the detector",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={"jobName": [self.job_name], "state": list(TERMINAL_STATES)},
            ),
            targets=[
                targets.LambdaFunction(
                    function, dead_letter_queue=dead_letter_queue, retry_attempts=4
                )
            ],
        )
