"""Detector (mechanism Y): S3 put events under ``chunks/`` and Glue job state changes invoke it.

Only the ``chunks/`` prefix notifies, so the detector's own writes (``detections/``,
``rejects/``) and Glue's (``glue/``) never retrigger it. Both triggers are asynchronous; an
invocation that still fails after Lambda's two retries lands in an encrypted SQS
dead-letter queue (the on-failure destination), and so does an EventBridge event that could
not be delivered. The monitoring construct alarms as soon as that queue is not empty.

With ``txnpipe:upgradeEngine=spark`` the detector starts the Glue job for PatId1
(``TXNPIPE_UPGRADE_ENGINE``, ``TXNPIPE_GLUE_JOB_NAME``) and reads its Parquet output from
``glue/``; only then does its bundle carry pyarrow (about 170 MB of its ~187 MB unzipped).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import bundling
from infra.config import (
    CHUNKS_PREFIX,
    DETECTIONS_PREFIX,
    DETECTOR_SERVICE,
    GLUE_PREFIX,
    REJECTS_PREFIX,
    TxnPipeConfig,
)
from infra.database import Database
from infra.functions import VpcPythonFunction
from infra.heavy_aggregation import HeavyAggregation
from infra.nag import acknowledge, iam5_resource
from infra.network import Network
from infra.storage import Storage


class Detector(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TxnPipeConfig,
        network: Network,
        storage: Storage,
        database: Database,
        heavy: HeavyAggregation,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue: the detector's on-failure destination "
            "and the EventBridge target DLQ. Nothing consumes it automatically.",
        )

        environment = {
            **config.local_invoke_env,
            **config.settings_env,
            "TXNPIPE_BUCKET": storage.bucket.bucket_name,
            "TXNPIPE_IMPORTANCE_KEY": config.importance_key,
            "TXNPIPE_DB_SECRET_ARN": database.secret.secret_arn,
            "TXNPIPE_DB_HOST": database.host,
            "TXNPIPE_DB_NAME": database.database_name,
            "TXNPIPE_GLUE_JOB_NAME": heavy.job_name,
            "TXNPIPE_UPGRADE_ENGINE": config.upgrade_engine,
            **config.powertools_env(DETECTOR_SERVICE),
        }
        self.lambda_ = VpcPythonFunction(
            self,
            "Lambda",
            config=config,
            network=network,
            database=database,
            name="detector",
            handler_dir=bundling.LAMBDAS_DIR / "detector",
            description="txnpipe detector (mechanism Y): applies chunks in order, writes detections",
            environment=environment,
            timeout=cdk.Duration.seconds(config.detector_timeout_seconds),
            memory_mib=config.detector_memory_mib,
            reserved_concurrency=config.detector_reserved_concurrency or None,
            logical_id="DetectorFunction",
            # pyarrow only when the Glue adapter reads Parquet (upgradeEngine=spark).
            requirements=bundling.detector_requirements(config.upgrade_engine),
        )
        self.function = self.lambda_.function
        self.function.configure_async_invoke(
            retry_attempts=2, on_failure=destinations.SqsDestination(self.dead_letter_queue)
        )

        # Least privilege on the data bucket.
        self.lambda_.grant_objects(
            "ReadChunksInputsAndGlueResults",
            ["s3:GetObject"],
            [
                storage.objects(CHUNKS_PREFIX),
                storage.objects(config.inputs_prefix),
                storage.objects(GLUE_PREFIX),
            ],
        )
        self.lambda_.grant_objects(
            "WriteDetectionsAndRejects",
            ["s3:PutObject"],
            [storage.objects(DETECTIONS_PREFIX), storage.objects(REJECTS_PREFIX)],
        )
        # Spark names its part files at run time: the detector lists glue/ to find them.
        self.lambda_.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListGlueResults",
                actions=["s3:ListBucket"],
                resources=[storage.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{GLUE_PREFIX}*"]}},
            )
        )
        heavy.grant_start_and_poll(self.function)

        storage.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.function),
            s3.NotificationKeyFilter(prefix=CHUNKS_PREFIX),
        )
        self.glue_state_rule = heavy.notify_state_changes(self.function, self.dead_letter_queue)

        stack = cdk.Stack.of(self)
        for prefix in (
            CHUNKS_PREFIX,
            config.inputs_prefix,
            GLUE_PREFIX,
            DETECTIONS_PREFIX,
            REJECTS_PREFIX,
        ):
            acknowledge(
                self.lambda_.role,
                iam5_resource(stack, storage.objects(prefix)),
                f"Object actions scoped to the {prefix} prefix of the data bucket; object keys "
                "(chunk, detection batch, Glue part files) are only known at run time.",
            )
