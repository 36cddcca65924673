"""Chunker (mechanism X): a Lambda that registers streams and paces them within the minute.

Streams are data: a put under ``inputs/transactions/`` invokes the chunker (an S3
notification), which registers that file's stream, pinned to the put's object version and
to the newest importance file's (one listing of ``inputs/importance/`` versions); a put of
a name that is already a stream is refused and recorded. Nothing names a stream at deploy
time.

EventBridge cannot schedule more often than once a minute, and the SPEC wants a chunk every
7 seconds. The rule invokes the chunker at rate(1 minute); each invocation takes a PostgreSQL
lock per live stream and writes each stream's chunk k at ``start + 7·k`` (``start`` = that
stream's start time stored in PostgreSQL) until TXNPIPE_RUN_SECONDS have passed, then
returns. Due times are anchored to
the stored start, not to the invocation, so there is no drift; the lock means never two
writers. Reserved concurrency 1 is the second guard, and a tick that cannot run within a
minute is dropped (max event age 60 s, no retries): the next tick supersedes it.

Least privilege: it reads only the transactions files (``inputs/transactions/``, pinned to the
object version it started from, hence ``s3:GetObjectVersion``), lists the versions under
``inputs/importance/`` (never reads them), writes only ``chunks/``, and
connects to the proxy as the database role ``txnpipe_chunker`` with an IAM token (the pointer
tables only). Its security group opens PostgreSQL to the proxy and HTTPS to S3, nothing else:
it calls no other AWS API.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from infra import bundling
from infra.config import CHUNKER_DB_USER, CHUNKER_SERVICE, CHUNKS_PREFIX, TxnPipeConfig
from infra.database import Database
from infra.functions import VpcPythonFunction
from infra.nag import acknowledge, iam5_resource
from infra.network import Network
from infra.storage import Storage
from txnpipe.core import environment as ENV

SCHEDULE = events.Schedule.rate(cdk.Duration.minutes(1))


class Chunker(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TxnPipeConfig,
        network: Network,
        storage: Storage,
        database: Database,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = {
            **config.local_invoke_env,
            **config.settings_env,
            ENV.BUCKET: storage.bucket.bucket_name,
            ENV.INPUTS_PREFIX: config.inputs_prefix,
            **database.client_environment(CHUNKER_DB_USER),
            ENV.RUN_SECONDS: str(config.run_seconds),
            **config.powertools_env(CHUNKER_SERVICE),
        }
        self.lambda_ = VpcPythonFunction(
            self,
            "Lambda",
            config=config,
            network=network,
            name="chunker",
            handler_dir=bundling.LAMBDAS_DIR / "chunker",
            description="txnpipe chunker (mechanism X): writes one chunk every 7 s, paced within the minute",
            environment=environment,
            timeout=cdk.Duration.seconds(config.chunker_timeout_seconds),
            memory_mib=config.chunker_memory_mib,
            reserved_concurrency=config.chunker_reserved_concurrency,
            logical_id="ChunkerFunction",
        )
        self.function = self.lambda_.function
        self.function.configure_async_invoke(
            retry_attempts=0, max_event_age=cdk.Duration.seconds(60)
        )

        # Least privilege: read the transactions (ranged GETs from the stored offset, of the
        # version the stream started from), write chunks; PostgreSQL as its own role.
        self.lambda_.grant_objects(
            "ReadTransactions",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [storage.objects(config.transactions_prefix)],
        )
        self.lambda_.grant_objects(
            "WriteChunks", ["s3:PutObject"], [storage.objects(CHUNKS_PREFIX)]
        )
        # A put whose event was lost (or dropped after a minute behind a long tick) is found
        # by listing the transactions prefix on the next tick; a new stream weighs with the
        # newest importance file, found by listing the versions there (never reading one).
        for sid, action, prefix in (
            ("ListTransactions", "s3:ListBucket", config.transactions_prefix),
            ("ListImportanceVersions", "s3:ListBucketVersions", config.importance_prefix),
        ):
            self.lambda_.role.add_to_policy(
                iam.PolicyStatement(
                    sid=sid,
                    actions=[action],
                    resources=[storage.bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                )
            )
        database.allow_client(self.lambda_.security_group, "PostgreSQL from the chunker Lambda")
        database.grant_connect(self.lambda_.role, CHUNKER_DB_USER)
        self.lambda_.allow_https_to_s3()
        stack = cdk.Stack.of(self)
        for prefix in (config.transactions_prefix, CHUNKS_PREFIX):
            acknowledge(
                self.lambda_.role,
                iam5_resource(stack, storage.objects(prefix)),
                f"Object actions scoped to the {prefix} prefix of the data bucket; the chunk keys "
                "and the input files' names are only known at run time (any file put there is a "
                "stream).",
            )

        # Each put of an input is an event: a transactions file registers its stream, an
        # importance file is logged (streams that start later weigh with it).
        for prefix in (config.transactions_prefix, config.importance_prefix):
            storage.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.LambdaDestination(self.function),
                s3.NotificationKeyFilter(prefix=prefix),
            )

        self.schedule = events.Rule(
            self,
            "Schedule",
            description="txnpipe chunker tick; the function paces 7-second chunks within the minute",
            schedule=SCHEDULE,
            enabled=config.schedule_enabled,
            targets=[
                targets.LambdaFunction(
                    self.function, retry_attempts=0, max_event_age=cdk.Duration.seconds(60)
                )
            ],
        )
