"""Migration: the schema and the functions' database roles, applied at deploy time.

The functions connect as roles that may not run DDL (``txnpipe_chunker``: the pointer tables
only; ``txnpipe_detector``: its own tables only), so the schema can no longer be brought up to
date by whichever function connects first. A custom resource does it instead, through the CDK
``Provider`` framework (which answers CloudFormation, retries nothing and fails the deployment
on an exception): its handler, the migrator Lambda (``lambdas/migrator/handler.py`` ->
``txnpipe/deploy_migration.py``), runs in the VPC, reads the master secret (the only reader of
it) and the two function secrets, connects to the instance itself with TLS (verify-full against
the RDS CA bundle in its bundle: the proxy knows no master credentials) and calls
``postgres.migrate``.

It re-runs on every change of its properties: the hash of the schema files
(``txnpipe/postgres/migrations/*.sql`` and ``roles.sql``) and the secrets' ARNs. The chunker and the detector depend on it,
so a deployment migrates before it ships code that needs the new schema, and the first
rotation of the function secrets waits for it (it sets their first passwords).

The migrator's security group opens PostgreSQL to the instance and HTTPS to the interface
endpoints (Secrets Manager), nothing else; its role may read exactly the three secrets.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra import bundling
from infra.config import TxnPipeConfig
from infra.database import Database
from infra.functions import VpcPythonFunction
from infra.nag import acknowledge
from infra.network import Network
from txnpipe.core import environment as ENV

SCHEMA_DIR = bundling.CORE_DIR / "postgres"
RESOURCE_TYPE = "Custom::TxnPipeDatabaseMigration"
# A migration that builds an index over a large table takes a while; the framework's own
# function waits for at most 15 minutes.
TIMEOUT_SECONDS = 600


def schema_hash(schema_dir: Path = SCHEMA_DIR) -> str:
    """SHA-256 over what a migration applies (names and contents): the numbered migrations
    (``migrations/*.sql``) and the function roles' grants (``roles.sql``)."""
    digest = hashlib.sha256()
    schema_dir = Path(schema_dir)
    for path in sorted([*schema_dir.glob("migrations/*.sql"), *schema_dir.glob("roles.sql")]):
        data = path.read_bytes()
        name = path.relative_to(schema_dir).as_posix()
        digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


class Migration(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TxnPipeConfig,
        network: Network,
        database: Database,
    ) -> None:
        super().__init__(scope, construct_id)
        instance = database.instance
        self.lambda_ = VpcPythonFunction(
            self,
            "Lambda",
            config=config,
            network=network,
            name="migrator",
            handler_dir=bundling.LAMBDAS_DIR / "migrator",
            description="txnpipe database migration (deploy time): schema and function roles",
            environment={
                ENV.DB_HOST: instance.db_instance_endpoint_address,
                ENV.DB_PORT: instance.db_instance_endpoint_port,
                ENV.DB_NAME: database.database_name,
                ENV.DB_SSLMODE: "verify-full",
                ENV.DB_SSLROOTCERT: bundling.sslrootcert_path(bundling.RDS_CA_BUNDLE),
            },
            timeout=cdk.Duration.seconds(TIMEOUT_SECONDS),
            memory_mib=256,
            reserved_concurrency=None,
            logical_id="MigratorFunction",
            requirements=bundling.migrator_requirements(),
            ca_bundle=bundling.RDS_CA_BUNDLE,
        )
        self.function = self.lambda_.function
        database.allow_direct(self.lambda_.security_group, "the migrator Lambda")
        self.lambda_.allow_https_to_endpoints()  # Secrets Manager
        for secret in (database.master_secret, *database.function_secrets.values()):
            secret.grant_read(self.lambda_.role)

        self.provider = cr.Provider(self, "Provider", on_event_handler=self.function)
        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={
                "SchemaHash": schema_hash(),
                "MasterSecretArn": database.master_secret.secret_arn,
                "RoleSecretArns": {
                    user: secret.secret_arn for user, secret in database.function_secrets.items()
                },
            },
        )
        # The network path must exist before the first run: the instance's ingress rule and
        # the migrator's egress rules are children of these two security groups.
        self.resource.node.add_dependency(
            database.instance_security_group, self.lambda_.security_group
        )

        framework = self.provider.node.find_child("framework-onEvent")
        acknowledge(
            framework,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "The Provider framework's function is created by aws-cdk-lib; its role only writes "
            "its own logs through this managed policy and is not configurable per statement.",
        )
        acknowledge(
            framework,
            f"AwsSolutions-IAM5[Resource::<{self.lambda_.logical_id}.Arn>:*]",
            "The Provider framework may invoke the migrator Lambda and its versions (':*'); "
            "aws-cdk-lib writes this grant, scoped to that one function.",
        )
