"""The environment contract between the deployed stack and the code it runs: every
``TXNPIPE_*`` variable, named once. ``infra/`` sets them, ``txnpipe.aws`` reads them, and
``txnpipe invoke`` fills them for a local run of a handler.

Settings (SPEC 6) travel as ``TXNPIPE_<NAME in upper case>`` too (``setting``); they are
read by ``Settings.from_sources``.
"""
from __future__ import annotations

from txnpipe.core.settings import ENV_PREFIX

# Where the data is
BUCKET = "TXNPIPE_BUCKET"
# The inputs prefix (``inputs/``): a file put under its ``transactions/`` starts a stream,
# which weighs with the newest file under its ``importance/``
INPUTS_PREFIX = "TXNPIPE_INPUTS_PREFIX"
S3_ENDPOINT = "TXNPIPE_S3_ENDPOINT"  # local runs (moto) only
# How the chunker paces itself within one invocation
RUN_SECONDS = "TXNPIPE_RUN_SECONDS"
# The EventBridge bus the detector tells of each detection file (none: it tells no one)
EVENT_BUS = "TXNPIPE_EVENT_BUS"
# PatId1's engine: inline, or spark on the Glue job named
UPGRADE_ENGINE = "TXNPIPE_UPGRADE_ENGINE"
GLUE_JOB_NAME = "TXNPIPE_GLUE_JOB_NAME"
# The database: a URL (local runs), or the proxy reached with an IAM token as a role
DATABASE_URL = "TXNPIPE_DATABASE_URL"
DB_HOST = "TXNPIPE_DB_HOST"
DB_PORT = "TXNPIPE_DB_PORT"
DB_NAME = "TXNPIPE_DB_NAME"
DB_USER = "TXNPIPE_DB_USER"
DB_SSLMODE = "TXNPIPE_DB_SSLMODE"
DB_SSLROOTCERT = "TXNPIPE_DB_SSLROOTCERT"


def setting(name: str) -> str:
    """The variable of setting ``name`` (``chunk_rows`` -> ``TXNPIPE_CHUNK_ROWS``)."""
    return ENV_PREFIX + name.upper()
