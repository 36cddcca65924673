"""The stack's SQS queues: encrypted (SQS-managed), TLS only, and each the end of its line
(no dead-letter queue of its own, which cdk-nag's SQS3 is told, with the reason)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge


def terminal_queue(scope: Construct, construct_id: str, *, retention_days: int,
                   why_no_dead_letter_queue: str) -> sqs.Queue:  # fmt: skip
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=cdk.Duration.days(retention_days),
    )
    acknowledge(queue, "AwsSolutions-SQS3", why_no_dead_letter_queue)
    return queue
