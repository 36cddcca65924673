"""A Python Lambda in the VPC with its own least-privilege role, log group and security group
(shared by the chunker, the detector and the migrator).

The role is written by hand instead of attaching AWSLambdaBasicExecutionRole and
AWSLambdaVPCAccessExecutionRole: logging is scoped to the function's own log group; only the
ENI actions Lambda needs to join the VPC keep ``*``, as AWS does not scope them further.

The security group allows no egress at all until the caller opens what the function uses
(PostgreSQL to the proxy or the instance, HTTPS to S3's prefix list or to the interface
endpoints): isolated subnets already bound where traffic can go, the security group bounds it
to the few peers each function talks to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import bundling
from infra.config import TxnPipeConfig
from infra.nag import acknowledge
from infra.network import Network, deny_egress_by_default

VPC_ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


class VpcPythonFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TxnPipeConfig,
        network: Network,
        name: str,
        handler_dir: Path,
        description: str,
        environment: Mapping[str, str],
        timeout: cdk.Duration,
        memory_mib: int,
        reserved_concurrency: int | None,
        logical_id: str,
        requirements: Sequence[str] | None = None,
        ca_bundle: Path | None = bundling.AMAZON_TRUST_ROOTS,
    ) -> None:
        """``requirements``: the packages bundled with the function (lines of a lock,
        ``name==version --hash=...``); ``None`` means ``infra/lambda_requirements.txt``. ``ca_bundle``: the CA file shipped
        under ``certs/`` for the function's TLS connection to PostgreSQL."""
        super().__init__(scope, construct_id)
        self.name = name
        self.network = network
        self.ca_bundle = ca_bundle
        self.requirements = tuple(
            bundling.read_requirements() if requirements is None else requirements
        )
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention(config.log_retention_days),
            removal_policy=cdk.RemovalPolicy.RETAIN if config.retain else cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(sid="JoinVpc", actions=list(VPC_ENI_ACTIONS), resources=["*"])
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only the EC2 network-interface actions Lambda needs to attach to the VPC (the same "
            "actions as AWSLambdaVPCAccessExecutionRole); AWS does not support narrowing them to "
            "resources that do not exist yet.",
        )

        self.security_group = deny_egress_by_default(
            ec2.SecurityGroup(
                self,
                "SecurityGroup",
                vpc=network.vpc,
                description=f"txnpipe {name} Lambda",
                allow_all_outbound=False,
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=bundling.RUNTIME,
            architecture=bundling.ARCHITECTURE,
            handler="handler.handler",
            code=bundling.function_code(
                handler_dir, requirements=self.requirements, ca_bundle=ca_bundle
            ),
            role=self.role,
            environment=dict(environment),
            timeout=timeout,
            memory_size=memory_mib,
            reserved_concurrent_executions=reserved_concurrency or None,
            vpc=network.vpc,
            vpc_subnets=network.isolated_subnets,
            security_groups=[self.security_group],
            log_group=self.log_group,
        )
        # A stable logical id, so that `sam local invoke <LogicalId>` is easy to type.
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.override_logical_id(logical_id)
        self.logical_id = logical_id

        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"Pinned to Python {bundling.PYTHON_VERSION}: the bundle's binary wheels (psycopg) are "
            f"fetched for exactly this CPython ABI; move both together in infra/bundling.py.",
        )

    def grant_objects(self, sid: str, actions: list[str], resources: list[str]) -> None:
        self.role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))

    def allow_https_to_s3(self) -> None:
        """Egress: HTTPS to S3 through the gateway endpoint (its managed prefix list)."""
        self.network.allow_https_to_s3(self.security_group, f"{self.name} Lambda")

    def allow_https_to_endpoints(self) -> None:
        """Egress: HTTPS to the interface endpoints (Secrets Manager, Glue)."""
        self.network.allow_https_to_endpoints(self.security_group, f"{self.name} Lambda")


# CloudWatch Logs accepts these retention periods only (days -> RetentionDays).
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    """The shortest allowed CloudWatch Logs retention of at least ``days`` days."""
    for allowed in sorted(_RETENTION):
        if allowed >= days:
            return _RETENTION[allowed]
    return _RETENTION[max(_RETENTION)]
