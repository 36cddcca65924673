"""Database: RDS PostgreSQL 16 (the chunk pointer, the history, the aggregates) behind RDS Proxy.

- Private isolated subnets only, not publicly accessible, storage encrypted, automated backups.
- Credentials generated into Secrets Manager; the core reads them at cold start
  (TXNPIPE_DB_SECRET_ARN) and connects to the proxy (TXNPIPE_DB_HOST) with TLS.
- The proxy pools connections for the bursty Lambdas. The core disables server-side prepared
  statements (psycopg ``prepare_threshold=None``), so sessions are not pinned by them; the
  chunker's session-level advisory lock does pin its one connection, as it must.
- Security groups: the instance accepts 5432 from the proxy only; the proxy accepts 5432 only
  from the security groups passed to :meth:`allow_client` (the two Lambdas). Glue never
  connects: it reads and writes S3 only.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_rds as rds
from constructs import Construct

from infra.config import TxnPipeConfig
from infra.nag import acknowledge
from infra.network import Network

POSTGRES_PORT = 5432


class Database(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: TxnPipeConfig, network: Network
    ) -> None:
        super().__init__(scope, construct_id)
        vpc = network.vpc
        self.database_name = config.db_name

        self.instance_security_group = ec2.SecurityGroup(
            self,
            "InstanceSecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="txnpipe PostgreSQL instance: 5432 from the RDS Proxy only",
        )
        self.proxy_security_group = ec2.SecurityGroup(
            self,
            "ProxySecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="txnpipe RDS Proxy: 5432 from the txnpipe Lambdas only",
        )
        # The proxy reads the credentials from Secrets Manager through the VPC endpoint.
        self.proxy_security_group.add_egress_rule(
            ec2.Peer.ipv4(config.vpc_cidr),
            ec2.Port.tcp(443),
            "HTTPS to the Secrets Manager VPC endpoint",
        )

        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            # A pinned minor: a bare "16" is no longer accepted for new instances. Minor
            # upgrades then happen in the maintenance window (auto_minor_version_upgrade).
            engine=rds.DatabaseInstanceEngine.postgres(
                version=rds.PostgresEngineVersion.of(config.db_engine_version, "16")
            ),
            instance_type=ec2.InstanceType(config.db_instance_type),
            vpc=vpc,
            vpc_subnets=network.isolated_subnets,
            security_groups=[self.instance_security_group],
            publicly_accessible=False,
            credentials=rds.Credentials.from_generated_secret(config.db_username),
            database_name=config.db_name,
            port=POSTGRES_PORT,
            storage_encrypted=True,
            storage_type=rds.StorageType.GP3,
            allocated_storage=config.db_allocated_storage_gib,
            max_allocated_storage=config.db_max_allocated_storage_gib,
            multi_az=config.db_multi_az,
            iam_authentication=True,
            backup_retention=cdk.Duration.days(config.db_backup_retention_days),
            delete_automated_backups=not config.retain,
            deletion_protection=config.retain,
            removal_policy=cdk.RemovalPolicy.SNAPSHOT
            if config.retain
            else cdk.RemovalPolicy.DESTROY,
            cloudwatch_logs_exports=["postgresql"],
            auto_minor_version_upgrade=True,
        )
        secret = self.instance.secret
        assert secret is not None  # generated credentials always come with a secret
        self.secret = secret

        self.proxy = rds.DatabaseProxy(
            self,
            "Proxy",
            proxy_target=rds.ProxyTarget.from_instance(self.instance),
            secrets=[self.secret],
            vpc=vpc,
            vpc_subnets=network.isolated_subnets,
            security_groups=[self.proxy_security_group],
            require_tls=True,
            iam_auth=False,
            idle_client_timeout=cdk.Duration.minutes(15),
            max_connections_percent=90,
            debug_logging=False,
        )
        self.host = self.proxy.endpoint

        acknowledge(
            self.instance,  # the generated secret is a child of the instance construct
            "AwsSolutions-SMG4",
            "No automatic rotation yet: the core reads the password once per Lambda container, "
            "so a rotated password would fail new connections from warm containers until they are "
            "recycled. Rotate manually during a pause of the schedule, or switch the proxy to IAM "
            "authentication.",
        )
        acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "The default port is kept: the instance is only reachable from the RDS Proxy security "
            "group inside isolated subnets, and a non-default port adds no access control.",
        )
        if not config.db_multi_az:
            acknowledge(
                self.instance,
                "AwsSolutions-RDS3",
                "Single-AZ by default to halve the cost of a demo stream; the state is rebuilt "
                "from S3 chunks if lost. Set context txnpipe:dbMultiAz=true for production.",
            )
        if not config.retain:
            acknowledge(
                self.instance,
                "AwsSolutions-RDS10",
                "Deletion protection is off only because context txnpipe:removalPolicy=destroy "
                "asked for a disposable stack.",
            )

    def allow_client(self, peer: ec2.IConnectable, description: str) -> None:
        """Let ``peer`` (a Lambda) reach the proxy on 5432."""
        self.proxy.connections.allow_from(peer, ec2.Port.tcp(POSTGRES_PORT), description)

    def grant_read_secret(self, grantee: iam.IGrantable) -> None:
        self.secret.grant_read(grantee)
