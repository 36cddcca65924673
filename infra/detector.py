"""Detector (mechanism Y): S3 put events under ``chunks/``, a one-minute sweep and (spark only)
Glue job state changes invoke it.

Only the ``chunks/`` prefix notifies, so the detector's own writes (``detections/``,
``rejects/``) and Glue's (``glue/``) never retrigger it. Both event triggers are asynchronous;
an invocation that still fails after Lambda's two retries lands in an encrypted SQS
dead-letter queue (the on-failure destination), and so does a Glue state event that could
not be delivered. The monitoring construct alarms as soon as that queue is not empty.

Events can still be lost (Lambda's asynchronous queue may drop one; Glue's state events are
best effort), so a **sweep** rule invokes the detector every minute with the plain scheduled
event (``source: aws.events``, ``detail-type: Scheduled Event``), which the core reads as
"nudge every live stream": apply chunks whose event was lost (it lists ``chunks/`` for them),
record a manifest, poll a batch run in flight. A sweep that cannot be delivered within 60 s is
dropped, never retried by EventBridge: the next one supersedes it.

With ``txnpipe:upgradeEngine=spark`` the detector starts the Glue job for PatId1
(``TXNPIPE_UPGRADE_ENGINE``, ``TXNPIPE_GLUE_JOB_NAME``), polls and lists its runs and reads
its Parquet output from ``glue/``; only then does its bundle carry pyarrow (about 170 MB of its
~187 MB unzipped), and only then does it get any ``glue:`` permission, ``glue/`` grant or the
Glue endpoint.

Least privilege otherwise: it reads the importance files (``inputs/importance/``, pinned to a
version) and ``chunks/``, lists ``chunks/`` only, writes ``detections/`` and ``rejects/``, and
connects to the proxy as the database role ``txnpipe_detector`` with an IAM token.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from infra import bundling
from infra.config import (
    CHUNKS_PREFIX,
    DETECTIONS_PREFIX,
    DETECTOR_DB_USER,
    DETECTOR_SERVICE,
    GLUE_PREFIX,
    REJECTS_PREFIX,
    TxnPipeConfig,
)
from infra.database import Database
from infra.detection_events import DetectionEvents
from infra.functions import VpcPythonFunction
from infra.heavy_aggregation import HeavyAggregation
from infra.nag import acknowledge, iam5_resource
from infra.network import Network
from infra.queues import terminal_queue
from infra.storage import Storage
from txnpipe.core import environment as ENV

SWEEP_SCHEDULE = events.Schedule.rate(cdk.Duration.minutes(1))


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
        heavy: HeavyAggregation | None,
        detection_events: DetectionEvents,
    ) -> None:
        """``heavy``: the Glue job, with ``upgradeEngine=spark`` only (else ``None``)."""
        super().__init__(scope, construct_id)
        self.dead_letter_queue = terminal_queue(
            self, "DeadLetterQueue", retention_days=14,
            why_no_dead_letter_queue="This queue is itself the dead-letter queue: the "
            "detector's on-failure destination and the EventBridge target DLQ. Nothing consumes "
            "it automatically.",
        )  # fmt: skip

        environment = {
            **config.local_invoke_env,
            **config.settings_env,
            ENV.BUCKET: storage.bucket.bucket_name,
            **database.client_environment(DETECTOR_DB_USER),
            ENV.UPGRADE_ENGINE: config.upgrade_engine,
            ENV.EVENT_BUS: detection_events.bus.event_bus_name,
            **({ENV.GLUE_JOB_NAME: heavy.job_name} if heavy is not None else {}),
            **config.powertools_env(DETECTOR_SERVICE),
        }
        self.lambda_ = VpcPythonFunction(
            self,
            "Lambda",
            config=config,
            network=network,
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
            "ReadImportance",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [storage.objects(config.importance_prefix)],
        )
        self.lambda_.grant_objects("ReadChunks", ["s3:GetObject"], [storage.objects(CHUNKS_PREFIX)])
        self.lambda_.grant_objects(
            "WriteDetectionsAndRejects",
            ["s3:PutObject"],
            [storage.objects(DETECTIONS_PREFIX), storage.objects(REJECTS_PREFIX)],
        )
        # Chunks whose event was lost are found by listing chunks/ (from the applied pointer),
        # and the sweep discovers streams by listing chunks/ with the delimiter "/".
        self.lambda_.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListChunks",
                actions=["s3:ListBucket"],
                resources=[storage.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{CHUNKS_PREFIX}*"]}},
            )
        )
        # An event per detection file, on the stack's bus only (through its endpoint).
        detection_events.grant_put(self.lambda_.role)
        self.lambda_.allow_https_to_endpoints()
        database.allow_client(self.lambda_.security_group, "PostgreSQL from the detector Lambda")
        database.grant_connect(self.lambda_.role, DETECTOR_DB_USER)
        self.lambda_.allow_https_to_s3()
        prefixes = [config.importance_prefix, CHUNKS_PREFIX, DETECTIONS_PREFIX, REJECTS_PREFIX]

        storage.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.function),
            s3.NotificationKeyFilter(prefix=CHUNKS_PREFIX),
        )
        self.sweep_rule = events.Rule(
            self,
            "Sweep",
            description="txnpipe detector sweep: nudge every live stream once a minute "
            "(lost chunk, manifest or Glue events)",
            schedule=SWEEP_SCHEDULE,
            targets=[
                targets.LambdaFunction(
                    self.function, retry_attempts=0, max_event_age=cdk.Duration.seconds(60)
                )
            ],
        )

        self.glue_state_rule: events.Rule | None = None
        if heavy is not None:
            self._use_glue(heavy, storage)
            prefixes.append(GLUE_PREFIX)

        stack = cdk.Stack.of(self)
        for prefix in prefixes:
            acknowledge(
                self.lambda_.role,
                iam5_resource(stack, storage.objects(prefix)),
                f"Object actions scoped to the {prefix} prefix of the data bucket; object keys "
                "(chunk, detection batch, Glue part files) are only known at run time.",
            )

    def _use_glue(self, heavy: HeavyAggregation, storage: Storage) -> None:
        """Spark engine: start, poll and list runs of the one job, read its results."""
        self.lambda_.grant_objects(
            "ReadGlueResults", ["s3:GetObject"], [storage.objects(GLUE_PREFIX)]
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
        self.glue_state_rule = heavy.notify_state_changes(self.function, self.dead_letter_queue)
