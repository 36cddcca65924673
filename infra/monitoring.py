"""Monitoring: CloudWatch alarms on what needs a person.

- the detector's dead-letter queue has a message (a chunk or Glue event that failed for good);
- the chunker or the detector reports errors;
- the database runs short of storage or is pinned on CPU.

Alarms notify the SNS topic given as context ``txnpipe:alarmTopicArn``, if any (the topic is
not created here: an encrypted topic CloudWatch may publish to needs a key policy that belongs
to whoever runs the account).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import TxnPipeConfig

GIB = 1024**3


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
        self.alarms: list[cloudwatch.Alarm] = []
        one_minute = cdk.Duration.minutes(1)
        five_minutes = cdk.Duration.minutes(5)

        self.dead_letter_alarm = self._alarm(
            "DeadLetterQueueNotEmpty",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=one_minute, statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description="txnpipe: a detector invocation or Glue state event failed for good "
            "(see the dead-letter queue; redrive after fixing the cause)",
        )
        self._alarm(
            "ChunkerErrors",
            chunker.metric_errors(period=five_minutes, statistic=cloudwatch.Stats.SUM),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description="txnpipe: the chunker failed; the next tick resumes from the stored pointer",
        )
        self._alarm(
            "DetectorErrors",
            detector.metric_errors(period=five_minutes, statistic=cloudwatch.Stats.SUM),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description="txnpipe: a detector invocation failed (Lambda retries it twice)",
        )
        self._alarm(
            "DatabaseFreeStorageLow",
            instance.metric_free_storage_space(
                period=five_minutes, statistic=cloudwatch.Stats.MINIMUM
            ),
            threshold=2 * GIB,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            description="txnpipe: PostgreSQL has less than 2 GiB free (storage autoscaling at its limit?)",
        )
        self._alarm(
            "DatabaseCpuHigh",
            instance.metric_cpu_utilization(
                period=five_minutes, statistic=cloudwatch.Stats.AVERAGE
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

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        description: str,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        self.alarms.append(alarm)
        return alarm
