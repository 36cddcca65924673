"""``txnpipe.aws.entry.database_conninfo``: IAM token through RDS Proxy, TLS verified, URL for local use.

Nothing is mocked but the ``rds`` client, passed in: a fake that records what it was asked
to sign and returns a token shaped like the real one (with characters that need quoting).
"""
from __future__ import annotations

from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from txnpipe.aws.entry import database_conninfo
from txnpipe.core.errors import TxnpipeError

PROXY = "txnpipe-proxy.proxy-abcdefghijkl.ap-south-1.rds.amazonaws.com"
TOKEN = (
    f"{PROXY}:5432/?Action=connect&DBUser=txnpipe_chunker&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=ASIA%2F20261201%2Fap-south-1%2Frds-db%2Faws4_request&X-Amz-Expires=900"
    "&X-Amz-Signature=0123abcd 'quoted' \\ back"
)
ROOTCERT = "/var/task/certs/amazon-trust-roots.pem"


class FakeRds:
    """Stands in for ``boto3.client("rds")``: records each token request."""

    class meta:  # the shape of a boto3 client's ``meta``
        region_name = "eu-west-1"

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def generate_db_auth_token(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        return TOKEN


def deployed_env(**overrides: str) -> dict[str, str]:
    """What infra/database.py (``client_environment``) sets, plus Lambda's own AWS_REGION."""
    env = {
        "AWS_REGION": "ap-south-1",
        "TXNPIPE_DB_HOST": PROXY,
        "TXNPIPE_DB_PORT": "5432",
        "TXNPIPE_DB_NAME": "txnpipe",
        "TXNPIPE_DB_USER": "txnpipe_chunker",
        "TXNPIPE_DB_SSLMODE": "verify-full",
        "TXNPIPE_DB_SSLROOTCERT": ROOTCERT,
    }
    env.update(overrides)
    return env


def test_connects_to_the_proxy_with_an_iam_token_and_verified_tls() -> None:
    rds = FakeRds()
    params = conninfo_to_dict(database_conninfo(deployed_env(), rds))
    assert params == {
        "host": PROXY,
        "port": "5432",
        "dbname": "txnpipe",
        "user": "txnpipe_chunker",
        "password": TOKEN,  # survives quoting byte for byte
        "sslmode": "verify-full",
        "sslrootcert": ROOTCERT,
        "connect_timeout": "10",
    }
    # The token is signed for exactly that endpoint, port, user and the function's region.
    assert rds.calls == [
        {"DBHostname": PROXY, "Port": 5432, "DBUsername": "txnpipe_chunker", "Region": "ap-south-1"}
    ]


def test_each_function_signs_for_its_own_user_and_port() -> None:
    rds = FakeRds()
    env = deployed_env(TXNPIPE_DB_USER="txnpipe_detector", TXNPIPE_DB_PORT="6432")
    params = conninfo_to_dict(database_conninfo(env, rds))
    assert (params["user"], params["port"]) == ("txnpipe_detector", "6432")
    assert rds.calls[0]["DBUsername"] == "txnpipe_detector" and rds.calls[0]["Port"] == 6432


def test_a_new_token_per_connection() -> None:
    """Tokens expire after 15 minutes: a reconnect must not reuse an old one."""
    rds = FakeRds()
    database_conninfo(deployed_env(), rds)
    database_conninfo(deployed_env(), rds)
    assert len(rds.calls) == 2


def test_defaults_port_5432_verify_full_and_the_clients_region() -> None:
    rds = FakeRds()
    env = deployed_env()
    for name in ("TXNPIPE_DB_PORT", "TXNPIPE_DB_SSLMODE", "TXNPIPE_DB_NAME", "AWS_REGION"):
        del env[name]
    params = conninfo_to_dict(database_conninfo(env, rds))
    assert params["port"] == "5432" and params["sslmode"] == "verify-full"
    assert params["dbname"] == "postgres"
    assert rds.calls[0]["Region"] == "eu-west-1"  # the client's own region


def test_the_url_wins_for_local_use() -> None:
    rds = FakeRds()
    url = "postgresql://postgres:postgres@127.0.0.1:5432/txnpipe"
    assert database_conninfo(deployed_env(TXNPIPE_DATABASE_URL=url), rds) == url
    assert database_conninfo({"TXNPIPE_DATABASE_URL": url}, rds) == url
    assert rds.calls == []  # nothing signed


def test_an_empty_url_is_unset() -> None:
    """SAM's --env-vars placeholders are empty strings (txnpipe:localInvoke)."""
    rds = FakeRds()
    params = conninfo_to_dict(database_conninfo(deployed_env(TXNPIPE_DATABASE_URL=""), rds))
    assert params["password"] == TOKEN


@pytest.mark.parametrize("missing", ["TXNPIPE_DB_HOST", "TXNPIPE_DB_USER"])
def test_host_and_user_are_required(missing: str) -> None:
    rds = FakeRds()
    env = deployed_env()
    del env[missing]
    with pytest.raises(TxnpipeError, match="TXNPIPE_DB_HOST and TXNPIPE_DB_USER"):
        database_conninfo(env, rds)
    assert rds.calls == []


def test_verify_full_needs_a_ca_bundle() -> None:
    env = deployed_env()
    del env["TXNPIPE_DB_SSLROOTCERT"]
    with pytest.raises(TxnpipeError, match="TXNPIPE_DB_SSLROOTCERT"):
        database_conninfo(env, FakeRds())
    # a weaker mode chosen on purpose needs none
    params = conninfo_to_dict(database_conninfo({**env, "TXNPIPE_DB_SSLMODE": "require"}, FakeRds()))
    assert params["sslmode"] == "require" and "sslrootcert" not in params


def test_a_bad_port_is_an_error() -> None:
    with pytest.raises(TxnpipeError, match="TXNPIPE_DB_PORT"):
        database_conninfo(deployed_env(TXNPIPE_DB_PORT="fivefourthreetwo"), FakeRds())


def test_no_secret_is_read() -> None:
    """The old secret variable is ignored: the functions have no secretsmanager permission."""
    rds = FakeRds()
    env = deployed_env(TXNPIPE_DB_SECRET_ARN="arn:aws:secretsmanager:ap-south-1:1:secret:x")
    assert conninfo_to_dict(database_conninfo(env, rds))["password"] == TOKEN
