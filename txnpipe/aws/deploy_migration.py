"""The deployment's database migration, run by the migrator Lambda at deploy time.

``infra/migration.py`` makes it a CloudFormation custom resource through the CDK Provider
framework, which sends CloudFormation the response: returning is success, raising is failure.
On Create and Update (the resource's properties hold a hash of the schema files, so a schema
change re-runs it) it reads the master secret, the only reader of it, and the two function
secrets, connects to the RDS instance itself with TLS (``sslmode=verify-full`` against the RDS
CA bundle shipped in the bundle, ``TXNPIPE_DB_SSLROOTCERT``) and calls
:func:`txnpipe.postgres.migrate`: the schema, the two function roles with only their
own tables, and each role's password from its own secret. Delete does nothing: the database
(retained or snapshotted) and its roles outlive the resource.

No secret value is logged or returned; the event carries secret ARNs only.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import psycopg

from txnpipe import postgres
from txnpipe.core import environment as ENV
from txnpipe.core.errors import TxnpipeError

PHYSICAL_RESOURCE_ID = "txnpipe-database-migration"
FUNCTION_ROLES = (postgres.CHUNKER_ROLE, postgres.DETECTOR_ROLE)


def master_conninfo(env: Mapping[str, str], secret: Mapping[str, Any]) -> str:
    """The instance's address from the environment (the secret's as a fallback), the master
    credentials from its secret; quoted by psycopg, never by hand."""
    sslmode = env.get(ENV.DB_SSLMODE) or "verify-full"
    rootcert = env.get(ENV.DB_SSLROOTCERT) or None
    if sslmode in ("verify-ca", "verify-full") and not rootcert:
        raise TxnpipeError(f"sslmode={sslmode} needs TXNPIPE_DB_SSLROOTCERT (a CA bundle file)")
    return psycopg.conninfo.make_conninfo(
        host=env.get(ENV.DB_HOST) or secret["host"],
        port=int(env.get(ENV.DB_PORT) or secret.get("port") or 5432),
        dbname=env.get(ENV.DB_NAME) or secret.get("dbname") or "postgres",
        user=secret["username"],
        password=secret["password"],
        sslmode=sslmode,
        sslrootcert=rootcert,
        connect_timeout=10,
    )


def _connect(conninfo: str) -> psycopg.Connection:
    return psycopg.connect(conninfo, autocommit=True)


def _secret(secrets: Any, arn: str) -> dict[str, Any]:
    value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    if not isinstance(value, dict) or not value.get("username") or not value.get("password"):
        raise TxnpipeError(f"secret {arn} holds no username and password")
    return value


def role_passwords(secrets: Any, role_secret_arns: Mapping[str, str]) -> dict[str, str]:
    """Role name -> password, each from the role's own secret, whose username must be the role."""
    if sorted(role_secret_arns) != sorted(FUNCTION_ROLES):
        raise TxnpipeError(
            f"RoleSecretArns must name exactly {', '.join(FUNCTION_ROLES)}, "
            f"got {', '.join(sorted(role_secret_arns)) or 'none'}"
        )
    passwords = {}
    for role, arn in role_secret_arns.items():
        secret = _secret(secrets, arn)
        if secret["username"] != role:
            raise TxnpipeError(f"secret {arn} is for user {secret['username']!r}, not {role!r}")
        passwords[role] = secret["password"]
    return passwords


def handle_migration_event(
    event: Mapping[str, Any],
    context: Any = None,
    *,
    env: Mapping[str, str] | None = None,
    secrets: Any = None,
    connect: Callable[[str], psycopg.Connection] = _connect,
) -> dict[str, Any]:
    """One custom-resource event: migrate on Create and Update, nothing on Delete."""
    request = event.get("RequestType")
    if request == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId") or PHYSICAL_RESOURCE_ID}
    if request not in ("Create", "Update"):
        raise TxnpipeError(f"unknown custom resource request type {request!r}")
    properties = event["ResourceProperties"]
    env = os.environ if env is None else env
    if secrets is None:
        import boto3  # provided by the Lambda runtime

        secrets = boto3.client("secretsmanager")
    passwords = role_passwords(secrets, properties["RoleSecretArns"])
    master = _secret(secrets, properties["MasterSecretArn"])
    with connect(master_conninfo(env, master)) as conn:
        postgres.migrate(conn, passwords)
    result = {"request": request, "roles": sorted(passwords),
              "migration": postgres.LATEST, "schema_hash": properties.get("SchemaHash")}  # fmt: skip
    print(json.dumps({"message": "database migrated", **result}))
    return {
        "PhysicalResourceId": PHYSICAL_RESOURCE_ID,
        "Data": {"Migration": str(postgres.LATEST)},
    }
