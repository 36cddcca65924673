"""Monitoring: a CloudWatch dashboard of the pipeline and alarms on what needs a person.

The functions log their metrics in embedded metric format (``txnpipe/aws/observability.py``):
namespace ``txnpipe``, dimensions ``service`` (``chunker`` / ``detector``) and ``source`` (a
stream), and, for what the alarms watch, the same service's totals over every stream with
the ``service`` dimension alone: streams come and go as files are put, the alarms are made
once. The dashboard draws a line per stream (a ``SEARCH`` over the ``source`` dimension).
CloudWatch Logs extracts them from the functions' own log groups; no IAM permission beyond
writing logs.

Alarms:

- the detector's dead-letter queue has a message (a chunk or Glue event that failed for good);
- the chunker or the detector reports errors (Lambda's ``Errors`` metric);
- a chunk took more than 60 s from landing to being applied (``ChunkLagSeconds`` max), or a
  landed chunk has been waiting more than 60 s for a predecessor (``PendingChunkAgeSeconds``:
  an applied chunk's lag is only known once it is applied, so a lost event shows here first);
- the chunker stopped advancing a stream before its end: for 3 consecutive minutes (more if
  the chunk interval is longer) a live stream's tick wrote no chunk;
- an input was refused (a put of a name that is already a stream, or of no valid name), or a
  stream failed (its file is no transactions file, or no importance file was there);
- the database runs short of storage or is pinned on CPU.

Missing data never breaches: no datapoint means no invocation reported (no stream running,
the schedule disabled, or a failing function, which the errors alarms catch).

Alarms notify the SNS topic given as context ``txnpipe:alarmTopicArn``, if any (the topic is
not created here: an encrypted topic CloudWatch may publish to needs a key policy that belongs
to whoever runs the account).
"""

from __future__ import annotations

import math

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import CHUNKER_SERVICE, DETECTOR_SERVICE, METRICS_NAMESPACE, TxnPipeConfig
from txnpipe.core import environment as ENV

GIB = 1024**3
ONE_MINUTE = cdk.Duration.minutes(1)
FIVE_MINUTES = cdk.Duration.minutes(5)
LAG_THRESHOLD_SECONDS = 60
DEFAULT_CHUNK_INTERVAL_SECONDS = 7.0
STALL_MINUTES = 3
PATTERNS = ("PatId1", "PatId2", "PatId3")


def stall_minutes(chunk_interval_seconds: float) -> int:
    """Minutes without a chunk that mean a stall: 3, or longer when chunks are rarer than that."""
    return max(STALL_MINUTES, math.ceil(chunk_interval_seconds / 60) + 2)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TxnPipeConfig,
        dead_letter_queue: sqs.IQueue,
        chunker: lambda_.IFunction,
        detector: lambda_.IFunction,
        instance: rds.DatabaseInstance,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.alarms: list[cloudwatch.Alarm] = []

        self.dead_letter_alarm = self._alarm(
            "DeadLetterQueueNotEmpty",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=ONE_MINUTE, statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description="txnpipe: a detector invocation or Glue state event failed for good "
            "(see the dead-letter queue; redrive after fixing the cause)",
        )
        self.chunker_errors_alarm = self._alarm(
            "ChunkerErrors",
            chunker.metric_errors(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description="txnpipe: the chunker failed; the next tick resumes from the stored pointer",
        )
        self.detector_errors_alarm = self._alarm(
            "DetectorErrors",
            detector.metric_errors(period=FIVE_MINUTES, statistic=cloudwatch.Stats.SUM),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description="txnpipe: a detector invocation failed (Lambda retries it twice)",
        )
        self.lag_alarm = self._alarm(
            "ChunkLagHigh",
            self.total(DETECTOR_SERVICE, "ChunkLagSeconds", cloudwatch.Stats.MAXIMUM),
            threshold=LAG_THRESHOLD_SECONDS,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description="txnpipe: a chunk took more than "
            f"{LAG_THRESHOLD_SECONDS} s from landing in S3 to being applied",
        )
        self.pending_alarm = self._alarm(
            "ChunkWaitingTooLong",
            self.total(DETECTOR_SERVICE, "PendingChunkAgeSeconds", cloudwatch.Stats.MAXIMUM),
            threshold=LAG_THRESHOLD_SECONDS,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description="txnpipe: a chunk landed more than "
            f"{LAG_THRESHOLD_SECONDS} s ago and still waits for a predecessor (a lost or failed "
            "event? see the dead-letter queue, or redeliver the missing chunk's event)",
        )
        interval = float(
            config.settings_env.get(
                ENV.setting("chunk_interval_seconds"), DEFAULT_CHUNK_INTERVAL_SECONDS
            )
        )
        self.chunk_interval_seconds = interval
        minutes = stall_minutes(interval)
        self.stalled_alarm = self._alarm(
            "ChunkerStalled",
            self.total(CHUNKER_SERVICE, "StreamsStalled", cloudwatch.Stats.MINIMUM),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=minutes,
            datapoints_to_alarm=minutes,
            description=f"txnpipe: the chunker wrote no chunk of a live stream for {minutes} "
            "minutes (lock held by another session? see the chunker's logs: busy=true)",
        )
        for alarm_id, metric, description in (
            ("InputRefused", "StreamsRefused", ("an input put was refused and changed nothing "
             "(its name is a stream already, or no valid source name): txnpipe status lists "
             "the refusals")),
            ("StreamFailed", "StreamsFailed", ("a stream failed (no transactions file, or no "
             "importance file): txnpipe status shows the reason")),
        ):  # fmt: skip
            self._alarm(
                alarm_id,
                self.total(CHUNKER_SERVICE, metric, cloudwatch.Stats.SUM),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                description=f"txnpipe: {description}",
            )
        self._alarm(
            "DatabaseFreeStorageLow",
            instance.metric_free_storage_space(
                period=FIVE_MINUTES, statistic=cloudwatch.Stats.MINIMUM
            ),
            threshold=2 * GIB,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            description="txnpipe: PostgreSQL has less than 2 GiB free (storage autoscaling at its limit?)",
        )
        self._alarm(
            "DatabaseCpuHigh",
            instance.metric_cpu_utilization(
                period=FIVE_MINUTES, statistic=cloudwatch.Stats.AVERAGE
            ),
            threshold=90,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=3,
            description="txnpipe: PostgreSQL CPU >= 90% for 15 minutes",
        )

        if config.alarm_topic_arn:
            topic = sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
            for alarm in self.alarms:
                alarm.add_alarm_action(cw_actions.SnsAction(topic))
                alarm.add_ok_action(cw_actions.SnsAction(topic))

        self.dashboard = self._dashboard(dead_letter_queue, chunker, detector)

    # -- metrics ----------------------------------------------------------------------------
    @staticmethod
    def total(service: str, name: str, statistic: str,
              label: str | None = None) -> cloudwatch.Metric:  # fmt: skip
        """A service's metric over every stream (the ``service`` dimension alone)."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": service},
            statistic=statistic,
            period=ONE_MINUTE,
            label=label,
        )

    @staticmethod
    def per_stream(service: str, name: str, statistic: str,
                   label: str) -> cloudwatch.MathExpression:  # fmt: skip
        """A line per stream: every ``source`` the service has reported the metric for."""
        query = (f"{{{METRICS_NAMESPACE},service,source}} service=\"{service}\" "
                 f"MetricName=\"{name}\"")  # fmt: skip
        return cloudwatch.MathExpression(
            expression=f"SEARCH('{query}', '{statistic}', 60)",
            using_metrics={},
            label=label,
            period=ONE_MINUTE,
        )

    def chunker_metric(self, name: str, statistic: str, label: str) -> cloudwatch.MathExpression:
        return self.per_stream(CHUNKER_SERVICE, name, statistic, label)

    def detector_metric(self, name: str, statistic: str, label: str) -> cloudwatch.MathExpression:
        return self.per_stream(DETECTOR_SERVICE, name, statistic, label)

    # -- dashboard --------------------------------------------------------------------------
    def _dashboard(
        self,
        dead_letter_queue: sqs.IQueue,
        chunker: lambda_.IFunction,
        detector: lambda_.IFunction,
    ) -> cloudwatch.Dashboard:
        sum_, max_, avg = cloudwatch.Stats.SUM, cloudwatch.Stats.MAXIMUM, cloudwatch.Stats.AVERAGE
        lag_line = cloudwatch.HorizontalAnnotation(
            value=LAG_THRESHOLD_SECONDS, label="alarm", color=cloudwatch.Color.RED
        )
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.config.stack_name,
            default_interval=cdk.Duration.hours(3),
        )
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# txnpipe: `{self.config.stack_name}`, every stream\n"
                "A file put under `inputs/transactions/` is a stream. The chunker (mechanism "
                f"X) writes a chunk of each every {self.chunk_interval_seconds:g} s; the "
                "detector (mechanism Y) applies each in order. Metrics per minute, namespace "
                f"`{METRICS_NAMESPACE}`, a line per stream (dimension `source`).",
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Chunker: chunks written / live streams",
                left=[self.chunker_metric("ChunksWritten", sum_, "chunks written")],
                right=[self.total(CHUNKER_SERVICE, "StreamsActive", max_, "live streams")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Chunker: records written",
                left=[self.chunker_metric("Records", sum_, "records")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Streams: stalled, registered, refused, failed",
                left=[self.total(CHUNKER_SERVICE, "StreamsStalled", max_, "stalled"),
                      self.total(CHUNKER_SERVICE, "StreamsRegistered", sum_, "registered"),
                      self.total(CHUNKER_SERVICE, "StreamsRefused", sum_, "refused"),
                      self.total(CHUNKER_SERVICE, "StreamsFailed", sum_, "failed")],
                right=[self.chunker_metric("Busy", sum_, "busy ticks (lock held elsewhere)")],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Detector: chunks applied / waiting / recovered without an event",
                left=[
                    self.detector_metric("ChunksApplied", sum_, "chunks applied"),
                    # chunks and manifests the detector found in S3 although their event was lost
                    self.detector_metric("EventsRecovered", sum_, "events recovered"),
                ],
                right=[self.detector_metric("PendingChunks", max_, "chunks waiting")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Detector: records and rejects",
                left=[self.detector_metric("Records", sum_, "records")],
                right=[self.detector_metric("Rejects", sum_, "rejects")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Detections by pattern",
                left=[self.detector_metric(f"Detections{p}", sum_, p) for p in PATTERNS],
                stacked=True,
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Chunk lag: landed to applied (s)",
                left=[
                    self.detector_metric("ChunkLagSeconds", max_, "lag max"),
                    self.detector_metric("ChunkLagSeconds", avg, "lag average"),
                    self.detector_metric("PendingChunkAgeSeconds", max_, "oldest waiting chunk"),
                ],
                left_annotations=[lag_line],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Detector duration (ms)",
                left=[
                    self.detector_metric("DetectorDurationMs", avg, "average"),
                    self.detector_metric("DetectorDurationMs", cloudwatch.Stats.p(99), "p99"),
                    self.detector_metric("DetectorDurationMs", max_, "max"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Lambda errors and throttles; dead-letter queue",
                left=[
                    chunker.metric_errors(
                        period=ONE_MINUTE, statistic=sum_, label="chunker errors"
                    ),
                    detector.metric_errors(
                        period=ONE_MINUTE, statistic=sum_, label="detector errors"
                    ),
                    detector.metric_throttles(
                        period=ONE_MINUTE, statistic=sum_, label="detector throttles"
                    ),
                ],
                right=[
                    dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, statistic=max_, label="dead letters"
                    )
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24, height=4)
        )
        return dashboard

    # -- alarms -----------------------------------------------------------------------------
    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        description: str,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        self.alarms.append(alarm)
        return alarm
