"""The one stack: storage, network, database, migration, heavy aggregation (spark only),
chunker, detector, monitoring (alarms and dashboard)."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from infra.catalog import QueryCatalog
from infra.chunker import Chunker
from infra.config import TxnPipeConfig
from infra.database import Database
from infra.detection_events import DetectionEvents
from infra.detector import Detector
from infra.heavy_aggregation import HeavyAggregation
from infra.migration import Migration
from infra.monitoring import Monitoring
from infra.nag import acknowledge
from infra.network import Network
from infra.storage import Storage


class TxnPipeStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: TxnPipeConfig, **kwargs
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="txnpipe: streaming transaction-pattern detection "
            "(chunker Lambda, detector Lambda, RDS PostgreSQL"
            + (", Glue)" if config.uses_glue else ")"),
            **kwargs,
        )
        self.config = config
        self.storage = Storage(self, "Storage", config=config)
        self.network = Network(
            self,
            "Network",
            config=config,
            flow_log_bucket=self.storage.log_bucket,
            data_bucket=self.storage.bucket,
        )
        self.database = Database(self, "Database", config=config, network=self.network)
        self.migration = Migration(
            self, "Migration", config=config, network=self.network, database=self.database
        )
        self.database.rotate_function_secrets(after=self.migration.resource)
        # The Glue job, its role, key, security configuration and state-change rule exist only
        # with the spark engine.
        self.heavy_aggregation: HeavyAggregation | None = None
        if config.uses_glue:
            self.heavy_aggregation = HeavyAggregation(
                self,
                "HeavyAggregation",
                config=config,
                storage=self.storage,
                network=self.network,
            )
        self.chunker = Chunker(
            self,
            "Chunker",
            config=config,
            network=self.network,
            storage=self.storage,
            database=self.database,
        )
        self.detection_events = DetectionEvents(self, "DetectionEvents", config=config,
                                                network=self.network)  # fmt: skip
        self.detector = Detector(
            self,
            "Detector",
            config=config,
            network=self.network,
            storage=self.storage,
            database=self.database,
            heavy=self.heavy_aggregation,
            detection_events=self.detection_events,
        )
        # Functions connect as roles the migration creates, to the schema it applies.
        for function in (self.chunker.function, self.detector.function):
            function.node.add_dependency(self.migration.resource)
        self.catalog = QueryCatalog(self, "Catalog", config=config, storage=self.storage)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            dead_letter_queue=self.detector.dead_letter_queue,
            chunker=self.chunker.function,
            detector=self.detector.function,
            instance=self.database.instance,
        )
        # RDS Proxy target groups take no tags (CloudFormation rejects the property).
        cdk.Tags.of(self).add(
            "project", "txnpipe", exclude_resource_types=["AWS::RDS::DBProxyTargetGroup"]
        )
        # aws-cdk-lib adds DependsOn entries that a GetAtt already implies (function -> role);
        # harmless, so cfn-lint's W3005 is switched off for this template only.
        self.template_options.metadata = {"cfn-lint": {"config": {"ignore_checks": ["W3005"]}}}
        self._outputs()
        self._acknowledge_cdk_internals()

    def _outputs(self) -> None:
        outputs = {
            "BucketName": (
                self.storage.bucket.bucket_name,
                (
                    f"Data bucket: upload transactions under {self.config.transactions_prefix}, "
                    f"importance under {self.config.importance_prefix}"
                ),
            ),
            "ChunkerFunctionName": (self.chunker.function.function_name, "Chunker Lambda"),
            "ChunkerLogGroup": (
                self.chunker.lambda_.log_group.log_group_name,
                "Chunker logs (aws logs tail --follow <name>)",
            ),
            "DetectorLogGroup": (
                self.detector.lambda_.log_group.log_group_name,
                "Detector logs (aws logs tail --follow <name>)",
            ),
            "DetectorFunctionName": (self.detector.function.function_name, "Detector Lambda"),
            "DatabaseProxyEndpoint": (self.database.host, "RDS Proxy endpoint (TXNPIPE_DB_HOST)"),
            "DatabaseSecretArn": (
                self.database.master_secret.secret_arn,
                "Master credentials (read by the migrator only; for administrators)",
            ),
            "DashboardName": (
                self.monitoring.dashboard.dashboard_name,
                "CloudWatch dashboard of the pipeline's metrics and alarms",
            ),
            "DeadLetterQueueUrl": (
                self.detector.dead_letter_queue.queue_url,
                "Detector dead-letter queue",
            ),
            "CatalogDatabase": (
                self.catalog.database_name,
                "Glue Data Catalog database of the detections and rejects tables",
            ),
            "AthenaWorkGroup": (self.catalog.work_group.ref, "Athena workgroup for those tables"),
            "DetectionEventBus": (
                self.detection_events.bus.event_bus_name,
                "EventBridge bus: one event per detection file written",
            ),
            "DetectionEventsQueueUrl": (
                self.detection_events.queue.queue_url,
                "The sample rule's queue of those events",
            ),
        }
        if self.heavy_aggregation is not None:
            outputs["GlueJobName"] = (
                self.heavy_aggregation.job_name,
                "Glue job computing PatId1's percentiles",
            )
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)

    def _acknowledge_cdk_internals(self) -> None:
        """The one finding on a helper that aws-cdk-lib itself adds to the stack."""
        # S3 -> Lambda notifications are configured by a CDK-provided singleton Lambda.
        handler = self.node.try_find_child(
            "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
        )
        if handler is not None:
            acknowledge(
                handler,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "The bucket-notification handler is created by aws-cdk-lib (S3 -> Lambda "
                "notifications); its role is not configurable and only writes its own logs.",
            )
