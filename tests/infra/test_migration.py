"""The migrator (``txnpipe/deploy_migration.py``): what the custom resource does at deploy time.

With stand-ins for Secrets Manager and the connection first (what it reads, how it connects,
what it refuses), then once against a real PostgreSQL (the session's embedded server): the
schema, the two roles with their passwords, each role's tables.
"""

from __future__ import annotations

import json
from typing import Any, Self

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

deploy_migration = pytest.importorskip("txnpipe.aws.deploy_migration")
postgres = pytest.importorskip("txnpipe.postgres")
errors = pytest.importorskip("txnpipe.core.errors")

MASTER_ARN = "arn:aws:secretsmanager:ap-south-1:111122223333:secret:master-AbCdEf"
CHUNKER_ARN = "arn:aws:secretsmanager:ap-south-1:111122223333:secret:chunker-AbCdEf"
DETECTOR_ARN = "arn:aws:secretsmanager:ap-south-1:111122223333:secret:detector-AbCdEf"
INSTANCE = "txnpipe.abcdefghijkl.ap-south-1.rds.amazonaws.com"
ROOTCERT = "/var/task/certs/rds-global-bundle.pem"
ENV = {
    "TXNPIPE_DB_HOST": INSTANCE,
    "TXNPIPE_DB_PORT": "5432",
    "TXNPIPE_DB_NAME": "txnpipe",
    "TXNPIPE_DB_SSLMODE": "verify-full",
    "TXNPIPE_DB_SSLROOTCERT": ROOTCERT,
}


class FakeSecrets:
    """Stands in for ``boto3.client("secretsmanager")``."""

    def __init__(self, values: dict[str, dict[str, Any]]) -> None:
        self.values = values
        self.read: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        self.read.append(SecretId)
        return {"SecretString": json.dumps(self.values[SecretId])}


class FakeConnection:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


def secrets(chunker_user: str = "txnpipe_chunker") -> FakeSecrets:
    return FakeSecrets(
        {
            MASTER_ARN: {"username": "txnpipe_admin", "password": "master pw'\\", "host": "x"},
            CHUNKER_ARN: {"username": chunker_user, "password": "chunker-pw", "dbname": "txnpipe"},
            DETECTOR_ARN: {"username": "txnpipe_detector", "password": "detector-pw"},
        }
    )


def event(request: str = "Create", **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request,
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:ap-south-1:111122223333:function:framework",
            "SchemaHash": "6bfb9b0c",
            "MasterSecretArn": MASTER_ARN,
            "RoleSecretArns": {"txnpipe_chunker": CHUNKER_ARN, "txnpipe_detector": DETECTOR_ARN},
        },
        **extra,
    }


@pytest.fixture
def migrations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, str]]]:
    calls: list[tuple[Any, dict[str, str]]] = []
    monkeypatch.setattr(
        deploy_migration.postgres, "migrate", lambda conn, pw=None: calls.append((conn, dict(pw)))
    )
    return calls


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_migrates_with_the_master_credentials_over_verified_tls(
    migrations: list, request_type: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = secrets()
    connections: list[FakeConnection] = []

    def connect(conninfo: str) -> FakeConnection:
        connections.append(FakeConnection(conninfo))
        return connections[-1]

    result = deploy_migration.handle_migration_event(
        event(request_type), None, env=ENV, secrets=fake, connect=connect
    )
    assert result == {
        "PhysicalResourceId": "txnpipe-database-migration",  # stable: an update never replaces
        "Data": {"Migration": str(postgres.LATEST)},
    }
    assert sorted(fake.read) == sorted([MASTER_ARN, CHUNKER_ARN, DETECTOR_ARN])
    (conn,) = connections
    assert conninfo_to_dict(conn.conninfo) == {
        "host": INSTANCE,  # the instance itself (the proxy has no master credentials)
        "port": "5432",
        "dbname": "txnpipe",
        "user": "txnpipe_admin",
        "password": "master pw'\\",
        "sslmode": "verify-full",
        "sslrootcert": ROOTCERT,
        "connect_timeout": "10",
    }
    assert migrations == [
        (conn, {"txnpipe_chunker": "chunker-pw", "txnpipe_detector": "detector-pw"})
    ]
    assert conn.closed
    # no secret value is logged, nor returned
    out = capsys.readouterr().out
    for value in ("master pw", "chunker-pw", "detector-pw"):
        assert value not in out and value not in json.dumps(result)
    assert json.loads(out)["message"] == "database migrated"


def test_delete_touches_nothing(migrations: list) -> None:
    fake = secrets()

    def connect(conninfo: str) -> FakeConnection:
        raise AssertionError("Delete must not connect")

    result = deploy_migration.handle_migration_event(
        event("Delete", PhysicalResourceId="txnpipe-database-migration"),
        None,
        env=ENV,
        secrets=fake,
        connect=connect,
    )
    assert result == {"PhysicalResourceId": "txnpipe-database-migration"}
    assert fake.read == [] and migrations == []


def test_a_role_secret_for_another_user_is_refused(migrations: list) -> None:
    with pytest.raises(errors.TxnpipeError, match="not 'txnpipe_chunker'"):
        deploy_migration.handle_migration_event(
            event(), None, env=ENV, secrets=secrets(chunker_user="txnpipe_admin"),
            connect=FakeConnection,
        )  # fmt: skip
    assert migrations == []


def test_both_roles_and_only_they_are_required(migrations: list) -> None:
    bad = event()
    bad["ResourceProperties"]["RoleSecretArns"] = {"txnpipe_chunker": CHUNKER_ARN}
    with pytest.raises(errors.TxnpipeError, match="RoleSecretArns"):
        deploy_migration.handle_migration_event(
            bad, None, env=ENV, secrets=secrets(), connect=FakeConnection
        )
    bad["ResourceProperties"]["RoleSecretArns"] = {
        "txnpipe_chunker": CHUNKER_ARN,
        "txnpipe_detector": DETECTOR_ARN,
        "postgres": MASTER_ARN,
    }
    with pytest.raises(errors.TxnpipeError, match="RoleSecretArns"):
        deploy_migration.handle_migration_event(
            bad, None, env=ENV, secrets=secrets(), connect=FakeConnection
        )
    assert migrations == []


def test_an_unknown_request_type_fails(migrations: list) -> None:
    with pytest.raises(errors.TxnpipeError, match="request type"):
        deploy_migration.handle_migration_event(event("Replace"), None, env=ENV, secrets=secrets())


def test_verify_full_needs_the_ca_bundle() -> None:
    env = {k: v for k, v in ENV.items() if k != "TXNPIPE_DB_SSLROOTCERT"}
    with pytest.raises(errors.TxnpipeError, match="TXNPIPE_DB_SSLROOTCERT"):
        deploy_migration.master_conninfo(env, {"username": "u", "password": "p"})


def test_the_secret_fills_in_what_the_environment_does_not() -> None:
    secret = {"username": "u", "password": "p", "host": "h", "port": 6543, "dbname": "d"}
    params = conninfo_to_dict(
        deploy_migration.master_conninfo({"TXNPIPE_DB_SSLROOTCERT": ROOTCERT}, secret)
    )
    assert (params["host"], params["port"], params["dbname"]) == ("h", "6543", "d")
    assert params["sslmode"] == "verify-full"


def test_roles_match_the_infrastructure() -> None:
    from infra.config import CHUNKER_DB_USER, DETECTOR_DB_USER

    assert deploy_migration.FUNCTION_ROLES == (CHUNKER_DB_USER, DETECTOR_DB_USER)


# -- against a real PostgreSQL --------------------------------------------------------------


def test_migrates_a_real_database_twice(database_url: str) -> None:
    """Create, then Update: the schema and both roles, each with its password and its tables."""
    params = conninfo_to_dict(database_url)
    env = {
        "TXNPIPE_DB_HOST": params.get("host", ""),
        "TXNPIPE_DB_PORT": params.get("port", "5432"),
        "TXNPIPE_DB_NAME": params["dbname"],
        "TXNPIPE_DB_SSLMODE": "disable",  # a local server without TLS; AWS uses verify-full
    }
    fake = FakeSecrets(
        {
            MASTER_ARN: {
                "username": params.get("user", "postgres"),
                "password": params.get("password") or "unused-by-the-local-server",
            },
            CHUNKER_ARN: {"username": "txnpipe_chunker", "password": "chunker-test-pw"},
            DETECTOR_ARN: {"username": "txnpipe_detector", "password": "detector-test-pw"},
        }
    )
    for request in ("Create", "Update"):
        result = deploy_migration.handle_migration_event(
            event(request), None, env=env, secrets=fake
        )
        assert result["PhysicalResourceId"] == "txnpipe-database-migration"
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute("SELECT max(number) FROM txnpipe.migrations").fetchone() == (postgres.LATEST,)
        roles = dict(
            conn.execute(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)",
                (["txnpipe_chunker", "txnpipe_detector"],),
            ).fetchall()
        )
        assert roles == {"txnpipe_chunker": True, "txnpipe_detector": True}
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if superuser.fetchone() == (True,):
            passwords = dict(
                conn.execute(
                    "SELECT rolname, rolpassword IS NOT NULL FROM pg_authid WHERE rolname = ANY(%s)",
                    (["txnpipe_chunker", "txnpipe_detector"],),
                ).fetchall()
            )
            assert passwords == {"txnpipe_chunker": True, "txnpipe_detector": True}

        def may(role: str, table: str, privilege: str) -> bool:
            query = "SELECT has_table_privilege(%s, %s, %s)"
            return conn.execute(query, (role, table, privilege)).fetchone() == (True,)

        # the chunker: the pointer tables only; the detector: its own, never the pointer
        assert may("txnpipe_chunker", "txnpipe.chunker_state", "UPDATE")
        assert not may("txnpipe_chunker", "txnpipe.history", "SELECT")
        assert may("txnpipe_detector", "txnpipe.history", "INSERT")
        assert not may("txnpipe_detector", "txnpipe.chunker_state", "UPDATE")
