"""Detections people can react to: the stack's EventBridge bus, on which the detector puts one
event per detection file written (``txnpipe/aws/detection_events.py``), and a sample rule that
sends them to a queue to poll (a consumer of your own gets a rule of its own: docs/deploy.md).

Least privilege: the detector may put events on this bus only, through the EventBridge
interface endpoint, whose policy admits ``events:PutEvents`` on this bus only.
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import TxnPipeConfig
from infra.network import Network
from infra.queues import terminal_queue
from txnpipe.aws.detection_events import DETAIL_TYPE, SOURCE

# The pattern of every detection file's event (docs/deploy.md shows the same).
PATTERN = events.EventPattern(source=[SOURCE], detail_type=[DETAIL_TYPE])


class DetectionEvents(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: TxnPipeConfig,
                 network: Network) -> None:  # fmt: skip
        super().__init__(scope, construct_id)
        self.network = network
        self.bus = events.EventBus(self, "Bus", event_bus_name=f"{config.stack_name}-detections",
                                   description="txnpipe: one event per detection file written")  # fmt: skip
        self.queue = terminal_queue(
            self, "SampleQueue", retention_days=4,
            why_no_dead_letter_queue="The sample rule's queue of detection-file events: a "
            "consumer polls it; what it does not take expires after 4 days, and the files stay "
            "in the bucket.",
        )  # fmt: skip
        self.sample_rule = events.Rule(
            self,
            "SampleRule",
            event_bus=self.bus,
            description="txnpipe sample: every detection file's event, to a queue to poll",
            event_pattern=PATTERN,
            targets=[targets.SqsQueue(self.queue)],
        )

    def grant_put(self, role: iam.IRole) -> None:
        """``events:PutEvents`` on this bus only, through the endpoint that admits only it."""
        self.bus.grant_put_events_to(role)
        self.network.allow_put_events(self.bus.event_bus_arn)
