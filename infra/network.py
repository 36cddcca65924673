"""Network: a VPC of private isolated subnets only, reached by VPC endpoints (no NAT, no IGW).

The Lambdas run in these subnets next to the RDS Proxy. What they call besides PostgreSQL goes
through endpoints, each with a policy that admits only this stack's resources, so that nothing
in the VPC can use them to reach another bucket, secret or job:

- S3 through a gateway endpoint (free): the data bucket and its objects only, and only the
  actions the functions are granted (:data:`S3_ENDPOINT_ACTIONS`).
- Secrets Manager through an interface endpoint: the stack's database secrets only
  (:meth:`Network.allow_secrets`). The migrator reads them at deploy time, the RDS Proxy and the
  hosted rotation functions at run time; the chunker and the detector never do (IAM
  authentication to the proxy).
- Glue through an interface endpoint, with ``upgradeEngine=spark`` only: the one job only.

Lambda security groups allow no egress by default; each function opens only what it uses: HTTPS
to the S3 prefix list (:meth:`allow_https_to_s3`), HTTPS to the interface endpoints
(:meth:`allow_https_to_endpoints`), PostgreSQL to the proxy or the instance (``Database``). The
S3 prefix list id differs per region and the stack is environment-agnostic, so it is looked up
at deploy time (:class:`S3PrefixList`). CloudWatch Logs needs no endpoint: Lambda ships logs
itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from infra.config import TxnPipeConfig
from infra.nag import acknowledge

HTTPS_PORT = 443
# Where the VPC flow logs land in the log bucket.
FLOW_LOGS_PREFIX = "vpc-flow-logs/"
# Everything the functions may do in S3 (their roles narrow it further, per prefix).
S3_ENDPOINT_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:ListBucket",
                       "s3:ListBucketVersions")  # fmt: skip
# What the RDS Proxy and the migrator need of a secret.
SECRET_READ_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
# aws-cdk-lib's placeholder egress rule that matches no traffic (no host has this address,
# no ICMP type 252 code 86 exists): a security group with at least one inline egress rule gets
# no default allow-all rule from EC2.
NO_TRAFFIC_CIDR = "255.255.255.255/32"
NO_TRAFFIC_ICMP = (252, 86)
NO_TRAFFIC_DESCRIPTION = "Disallow all traffic"
# The construct id aws-cdk-lib gives the function shared by every AwsCustomResource of a stack.
AWS_CUSTOM_RESOURCE_SINGLETON = "AWS679f53fac002430cb0da5b7982bd2287"


def allow_flow_log_delivery(bucket: s3.IBucket, prefix: str) -> None:
    """The bucket policy with which CloudWatch Logs' delivery service writes this account's
    VPC flow logs under ``prefix``: set here rather than left to the feature flag
    ``@aws-cdk/aws-s3:createDefaultLoggingPolicy`` (without it, AWS would edit the bucket's
    policy itself at the first delivery). The statements are those aws-cdk-lib writes with the
    flag, which it then merges with these."""
    stack = cdk.Stack.of(bucket)
    source = {
        "ArnLike": {"aws:SourceArn": stack.format_arn(service="logs", resource="*")},
    }
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            effect=iam.Effect.ALLOW,
            principals=[iam.ServicePrincipal("delivery.logs.amazonaws.com")],
            resources=[bucket.arn_for_objects(f"{prefix}AWSLogs/{stack.account}/*")],
            actions=["s3:PutObject"],
            conditions={
                "StringEquals": {
                    "s3:x-amz-acl": "bucket-owner-full-control",
                    "aws:SourceAccount": stack.account,
                },
                **source,
            },
        )
    )
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            effect=iam.Effect.ALLOW,
            principals=[iam.ServicePrincipal("delivery.logs.amazonaws.com")],
            resources=[bucket.bucket_arn],
            actions=["s3:GetBucketAcl", "s3:ListBucket"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}, **source},
        )
    )


@jsii.implements(cdk.IAspect)
class _KeepAnInlineEgressRule:
    """Adds the no-traffic placeholder back to one security group left without inline egress."""

    def __init__(self, security_group: ec2.SecurityGroup) -> None:
        self.path = security_group.node.path

    def visit(self, node: IConstruct) -> None:
        if node.node.path != self.path or not isinstance(node, ec2.SecurityGroup):
            return
        cfn = node.node.default_child
        assert isinstance(cfn, ec2.CfnSecurityGroup)
        if not cdk.Stack.of(node).resolve(cfn.security_group_egress):
            node.add_egress_rule(
                ec2.Peer.ipv4(NO_TRAFFIC_CIDR),
                ec2.Port.icmp_type_and_code(NO_TRAFFIC_ICMP[0], NO_TRAFFIC_ICMP[1]),
                NO_TRAFFIC_DESCRIPTION,
            )


def deny_egress_by_default(security_group: ec2.SecurityGroup) -> ec2.SecurityGroup:
    """Keep an inline egress rule on ``security_group`` whatever rules are added to it.

    aws-cdk-lib drops its no-traffic placeholder as soon as any egress rule is added, also
    when that rule becomes a separate ``AWS::EC2::SecurityGroupEgress`` resource (a rule to
    another security group, or to a prefix list known only at deploy time). A group left with
    no inline egress is created by EC2 with its default allow-all rule, which CloudFormation
    revokes only once it adds the first separate rule. With the placeholder back (an aspect,
    so that it sees every rule added during construction) the group never allows more than
    its rules, not even for that moment, and the template says so.
    """
    cdk.Aspects.of(security_group).add(_KeepAnInlineEgressRule(security_group))
    return security_group


class S3PrefixList(Construct):
    """The id of the region's AWS-managed S3 prefix list, looked up at deploy time.

    Security groups can name the S3 gateway endpoint's addresses only by this id, which differs
    per region; the stack is environment-agnostic, so a synth-time context lookup is not
    possible. An ``AwsCustomResource`` calls ``ec2:DescribeManagedPrefixLists`` for the
    endpoint's own service name (``com.amazonaws.<region>.s3``) on create and update.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        service_name = ec2.GatewayVpcEndpointAwsService.S3.name
        call = cr.AwsSdkCall(
            service="EC2",
            action="describeManagedPrefixLists",
            parameters={"Filters": [{"Name": "prefix-list-name", "Values": [service_name]}]},
            physical_resource_id=cr.PhysicalResourceId.from_response("PrefixLists.0.PrefixListId"),
            output_paths=["PrefixLists.0.PrefixListId"],
        )
        self.lookup = cr.AwsCustomResource(
            self,
            "Lookup",
            on_create=call,
            on_update=call,
            install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["ec2:DescribeManagedPrefixLists"],
                        # A Describe action: EC2 supports no resource-level permission for it.
                        resources=["*"],
                    )
                ]
            ),
        )
        self.prefix_list_id = self.lookup.get_response_field("PrefixLists.0.PrefixListId")
        acknowledge(
            self.lookup,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeManagedPrefixLists is a read-only Describe action that supports no "
            "resource-level permission; it is the only action of this lookup's policy.",
        )
        # The function behind every AwsCustomResource is a stack-level singleton of aws-cdk-lib.
        singleton = cdk.Stack.of(self).node.try_find_child(AWS_CUSTOM_RESOURCE_SINGLETON)
        if singleton is not None:
            acknowledge(
                singleton,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "The AwsCustomResource function is created by aws-cdk-lib; its role only writes "
                "its own logs through this managed policy and is not configurable.",
            )


class Network(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TxnPipeConfig,
        flow_log_bucket: s3.IBucket,
        data_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            max_azs=config.max_azs,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
            ],
            enable_dns_hostnames=True,  # required for interface endpoints' private DNS
            enable_dns_support=True,
            # The default security group keeps no rule (set here, not left to the feature flag
            # @aws-cdk/aws-ec2:restrictDefaultSecurityGroup).
            restrict_default_security_group=True,
        )
        self.isolated_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        # Interface endpoints are billed per AZ: the dev profile keeps them in one (the other
        # AZ reaches them across the VPC); prod in every AZ, so an AZ outage leaves them up.
        azs = self.vpc.availability_zones
        self.endpoint_subnets = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
            availability_zones=azs[: config.endpoint_azs] if config.endpoint_azs else None,
        )

        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_s3(flow_log_bucket, FLOW_LOGS_PREFIX),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        allow_flow_log_delivery(flow_log_bucket, FLOW_LOGS_PREFIX)

        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3Endpoint",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[self.isolated_subnets],
        )
        # Nothing else in the VPC uses S3: Lambda fetches function code outside it, and the
        # Glue job runs outside it.
        self.s3_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="DataBucketOnly",
                principals=[iam.AnyPrincipal()],
                actions=list(S3_ENDPOINT_ACTIONS),
                resources=[data_bucket.bucket_arn, data_bucket.arn_for_objects("*")],
            )
        )
        self.s3_prefix_list = S3PrefixList(self, "S3PrefixList")

        # Interface endpoints: HTTPS from inside the VPC only (the CIDR is given literally so
        # that the rule is checkable at synth time; the RDS Proxy reaches Secrets Manager too).
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="txnpipe interface endpoints: HTTPS from inside the VPC",
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(config.vpc_cidr), ec2.Port.tcp(HTTPS_PORT), "HTTPS from inside the VPC"
        )
        self.secrets_manager_endpoint = self.vpc.add_interface_endpoint(
            "SecretsManagerEndpoint",
            service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            subnets=self.endpoint_subnets,
            private_dns_enabled=True,
            security_groups=[self.endpoint_security_group],
            open=False,
        )
        # The detector puts an event per detection file on the stack's bus.
        self.events_endpoint = self.vpc.add_interface_endpoint(
            "EventBridgeEndpoint",
            service=ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
            subnets=self.endpoint_subnets,
            private_dns_enabled=True,
            security_groups=[self.endpoint_security_group],
            open=False,
        )
        # Only the detector calls Glue, and only with the spark engine.
        self.glue_endpoint: ec2.InterfaceVpcEndpoint | None = None
        if config.uses_glue:
            self.glue_endpoint = self.vpc.add_interface_endpoint(
                "GlueEndpoint",
                service=ec2.InterfaceVpcEndpointAwsService.GLUE,
                subnets=self.endpoint_subnets,
                private_dns_enabled=True,
                security_groups=[self.endpoint_security_group],
                open=False,
            )

    # -- endpoint policies -----------------------------------------------------------------
    def allow_secrets(
        self, sid: str, secrets: Sequence[secretsmanager.ISecret], actions: Sequence[str]
    ) -> None:
        """Admit ``actions`` on exactly ``secrets`` through the Secrets Manager endpoint."""
        self.secrets_manager_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[iam.AnyPrincipal()],
                actions=list(actions),
                resources=[secret.secret_arn for secret in secrets],
            )
        )

    def allow_secrets_manager_call(self, sid: str, actions: Sequence[str]) -> None:
        """Admit ``actions`` that take no resource (``GetRandomPassword``) through the endpoint."""
        self.secrets_manager_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid=sid, principals=[iam.AnyPrincipal()], actions=list(actions), resources=["*"]
            )
        )

    def allow_glue_job(self, job_arn: str, actions: Sequence[str]) -> None:
        """Admit ``actions`` on the one Glue job through the Glue endpoint (spark only)."""
        assert self.glue_endpoint is not None, "the Glue endpoint exists with upgradeEngine=spark"
        self.glue_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="TxnPipeJobOnly",
                principals=[iam.AnyPrincipal()],
                actions=list(actions),
                resources=[job_arn],
            )
        )

    def allow_put_events(self, bus_arn: str) -> None:
        """Admit ``events:PutEvents`` on the one bus through the EventBridge endpoint."""
        self.events_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="TxnPipeBusOnly",
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[bus_arn],
            )
        )

    # -- security group egress ---------------------------------------------------------------
    def allow_https_to_s3(self, security_group: ec2.SecurityGroup, name: str) -> None:
        """HTTPS from ``security_group`` to S3's addresses (the gateway endpoint's prefix list)."""
        security_group.add_egress_rule(
            ec2.Peer.prefix_list(self.s3_prefix_list.prefix_list_id),
            ec2.Port.tcp(HTTPS_PORT),
            f"HTTPS from the {name} to S3 through the gateway endpoint",
        )

    def allow_https_to_endpoints(self, security_group: ec2.SecurityGroup, name: str) -> None:
        """HTTPS from ``security_group`` to the interface endpoints' security group."""
        security_group.add_egress_rule(
            ec2.Peer.security_group_id(self.endpoint_security_group.security_group_id),
            ec2.Port.tcp(HTTPS_PORT),
            f"HTTPS from the {name} to the interface endpoints",
        )
