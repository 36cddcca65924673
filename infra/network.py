"""Network: a VPC of private isolated subnets only, reached by VPC endpoints (no NAT, no IGW).

The Lambdas run in these subnets next to the RDS Proxy. What they call besides PostgreSQL goes
through endpoints: S3 through a gateway endpoint (free), Secrets Manager (the core reads the DB
secret at cold start; the RDS Proxy reads it too) and Glue (the detector starts and polls job
runs) through interface endpoints. CloudWatch Logs needs none: Lambda ships logs itself.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import TxnPipeConfig


class Network(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TxnPipeConfig,
        flow_log_bucket: s3.IBucket,
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
        )
        self.isolated_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_s3(flow_log_bucket, "vpc-flow-logs/"),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )

        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3Endpoint",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[self.isolated_subnets],
        )
        # Interface endpoints: HTTPS from inside the VPC only (the CIDR is given literally so
        # that the rule is checkable at synth time).
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="txnpipe interface endpoints: HTTPS from inside the VPC",
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(config.vpc_cidr), ec2.Port.tcp(443), "HTTPS from inside the VPC"
        )
        self.secrets_manager_endpoint = self.vpc.add_interface_endpoint(
            "SecretsManagerEndpoint",
            service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            subnets=self.isolated_subnets,
            private_dns_enabled=True,
            security_groups=[self.endpoint_security_group],
            open=False,
        )
        self.glue_endpoint = self.vpc.add_interface_endpoint(
            "GlueEndpoint",
            service=ec2.InterfaceVpcEndpointAwsService.GLUE,
            subnets=self.isolated_subnets,
            private_dns_enabled=True,
            security_groups=[self.endpoint_security_group],
            open=False,
        )
