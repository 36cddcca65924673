"""Lambda entry points: configuration from the environment, clients made once per container.

The handlers in ``lambdas/`` call these two functions and nothing else. Each function
connects as its own database role with an IAM authentication token (``database_conninfo``),
or, for local invokes against moto and a local PostgreSQL, with ``TXNPIPE_DATABASE_URL``;
no credential ever comes from code or from a secret read at run time.
Each invocation logs JSON and emits EMF metrics through ``txnpipe.aws.observability``
(Powertools), so that the core stays free of it.
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import psycopg

from txnpipe import postgres
from txnpipe.aws import observability as obs
from txnpipe.aws.detection_events import EventBridgeEvents
from txnpipe.aws.glue import GlueUpgradeEngine
from txnpipe.aws.s3store import S3Store
from txnpipe.core import environment as ENV
from txnpipe.core.chunker import tick_streams
from txnpipe.core.detector import Detector
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.events import chunk_refs, is_job_state_change, is_sweep, purge_request, s3_puts
from txnpipe.core.keys import CHUNKS_PREFIX
from txnpipe.core.ports import UpgradeEngine
from txnpipe.core.settings import Settings
from txnpipe.core.streams import (
    DEFAULT_INPUTS_PREFIX,
    InputPrefixes,
    discover_inputs,
    is_importance_key,
    is_transactions_key,
    register_input,
)


@dataclass(frozen=True)
class Config:
    bucket: str
    inputs: InputPrefixes
    run_seconds: float
    s3_endpoint: str | None
    upgrade_engine: str = "inline"
    glue_job_name: str | None = None
    event_bus: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        def need(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise TxnpipeError(f"environment variable {name} is not set")
            return value

        return cls(
            bucket=need(ENV.BUCKET),
            inputs=InputPrefixes(env.get(ENV.INPUTS_PREFIX) or DEFAULT_INPUTS_PREFIX),
            run_seconds=float(env.get(ENV.RUN_SECONDS, "50")),
            s3_endpoint=env.get(ENV.S3_ENDPOINT) or None,
            upgrade_engine=env.get(ENV.UPGRADE_ENGINE, "inline").strip() or "inline",
            glue_job_name=env.get(ENV.GLUE_JOB_NAME) or None,
            event_bus=env.get(ENV.EVENT_BUS) or None,
        )


def database_conninfo(env: Mapping[str, str], rds: Any = None) -> str:
    """A libpq conninfo for the deployed database (quoted by psycopg, never by hand).

    ``TXNPIPE_DATABASE_URL`` wins (local use). Otherwise the function connects to the RDS Proxy
    (``TXNPIPE_DB_HOST``, ``TXNPIPE_DB_PORT``) as its own database role (``TXNPIPE_DB_USER``)
    with an IAM authentication token as the password: signed locally by the ``rds`` client
    (no network call, no secret), valid for 15 minutes, needed only to open the connection.
    TLS is verified against the CA bundle shipped in the Lambda bundle
    (``TXNPIPE_DB_SSLMODE``, default ``verify-full``; ``TXNPIPE_DB_SSLROOTCERT``).
    """
    if url := env.get(ENV.DATABASE_URL):
        return url
    host = env.get(ENV.DB_HOST, "").strip()
    user = env.get(ENV.DB_USER, "").strip()
    if not host or not user:
        raise TxnpipeError(
            "set TXNPIPE_DB_HOST and TXNPIPE_DB_USER (AWS) or TXNPIPE_DATABASE_URL (local)"
        )
    try:
        port = int(env.get(ENV.DB_PORT) or 5432)
    except ValueError:
        port_text = env[ENV.DB_PORT]
        raise TxnpipeError(f"TXNPIPE_DB_PORT must be a port number, got {port_text!r}") from None
    sslmode = env.get(ENV.DB_SSLMODE) or "verify-full"
    rootcert = env.get(ENV.DB_SSLROOTCERT) or None
    if sslmode in ("verify-ca", "verify-full") and not rootcert:
        raise TxnpipeError(f"sslmode={sslmode} needs TXNPIPE_DB_SSLROOTCERT (a CA bundle file)")
    rds = rds or boto3.client("rds")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or rds.meta.region_name
    token = rds.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=region)
    return psycopg.conninfo.make_conninfo(
        host=host,
        port=port,
        dbname=env.get(ENV.DB_NAME) or "postgres",
        user=user,
        password=token,
        sslmode=sslmode,
        sslrootcert=rootcert,
        connect_timeout=10,
    )


@cache
def _client(service: str, endpoint: str | None) -> Any:
    """``endpoint``: moto, for local invokes (S3 and EventBridge alike)."""
    return boto3.client(service, endpoint_url=endpoint)


def _s3_client(endpoint: str | None) -> Any:
    return _client("s3", endpoint)


def clear_clients() -> None:
    """Forget the clients made so far (tests that change endpoints between invocations)."""
    _client.cache_clear()


_connections: dict[str, psycopg.Connection] = {}  # kept warm across invocations


def _upgrade_engine(config: Config) -> UpgradeEngine | None:
    """PatId1 inline (per chunk), or on the Glue job (``TXNPIPE_UPGRADE_ENGINE=spark``)."""
    if config.upgrade_engine == "inline":
        return None
    if config.upgrade_engine != "spark" or not config.glue_job_name:
        raise TxnpipeError(
            "TXNPIPE_UPGRADE_ENGINE must be 'inline', or 'spark' with TXNPIPE_GLUE_JOB_NAME set"
        )
    return GlueUpgradeEngine(boto3.client("glue"), _s3_client(config.s3_endpoint),
                             config.bucket, config.glue_job_name)  # fmt: skip


def _events(config: Config) -> EventBridgeEvents | None:
    if config.event_bus is None:
        return None
    return EventBridgeEvents(_client("events", config.s3_endpoint), config.event_bus, config.bucket)


def _db() -> psycopg.Connection:
    """One connection per container, reopened if the server went away between invocations."""
    return _open("main")


def _staging_db() -> psycopg.Connection:
    """The detector's second connection, for the history writes of its prefetch thread."""
    return _open("staging")


def _open(role: str) -> psycopg.Connection:
    conn = _connections.get(role)
    if conn is None or conn.closed or conn.broken:
        conn = _connections[role] = postgres.connect(database_conninfo(os.environ))
    return conn


def handle_chunker_event(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """An input's put registers its stream (or is refused); the minute's tick advances every
    live stream."""
    log = obs.logger(obs.CHUNKER_SERVICE)
    with obs.invocation(log, context):
        config = Config.from_env(os.environ)
        store = S3Store(_s3_client(config.s3_endpoint), config.bucket)
        puts = list(s3_puts(event))
        if puts:
            registry = postgres.PgStreamRegistry(_db())
            registrations = []
            for put in puts:
                if is_transactions_key(put.key, config.inputs):
                    registrations.append(register_input(store, registry, put.key, put.version,
                                                        config.inputs))  # fmt: skip
                elif is_importance_key(put.key, config.inputs):
                    obs.report_importance_put(log, put.key)
            obs.report_registrations(log, registrations)
            return {"registered": [r.source for r in registrations if r.outcome == "registered"],
                    "refused": [r.source for r in registrations if r.outcome == "refused"]}  # fmt: skip
        settings = Settings.from_sources(os.environ)
        state, registry = postgres.PgChunkerState(_db()), postgres.PgStreamRegistry(_db())
        obs.report_registrations(log, discover_inputs(store, registry, config.inputs))
        reports = tick_streams(store, state, registry, settings, run_seconds=config.run_seconds)
        records = obs.report_ticks(log, reports, state, settings.chunk_rows)
    return {"streams": [{"source": r.source, "written": r.chunks_written, "done": r.done,
                         "busy": r.busy, "failed": r.failed, "records": records[r.source]}
                        for r in reports]}  # fmt: skip


def handle_detector_event(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    log = obs.logger(obs.DETECTOR_SERVICE)
    with obs.invocation(log, context):
        if (source := purge_request(event)) is not None:
            batch_rows = Settings.from_sources(os.environ).detection_batch_rows
            purged = postgres.purge(_db(), source, batch_rows)
            obs.report_purge(log, purged)
            return {"purged": source, "removed": purged.removed, "already": purged.already}
        refs = chunk_refs(event)
        obs.log_event(log, refs)
        config = Config.from_env(os.environ)
        state = postgres.PgDetectorState(_db(), staging=_staging_db)
        store = S3Store(_s3_client(config.s3_endpoint), config.bucket)
        detector = Detector(store, state, Settings.from_sources(os.environ),
                            upgrade_engine=_upgrade_engine(config), events=_events(config))  # fmt: skip
        if is_sweep(event):  # no event is lost for good: every minute, catch up without one
            sources = sorted({*state.live_sources(detector.settings.detection_batch_rows),
                              *store.prefixes(CHUNKS_PREFIX)})  # fmt: skip
        elif is_job_state_change(event):
            sources = state.sources_with_runs()
        else:
            sources = list(dict.fromkeys(r.source for r in refs))
        first_seq = obs.detections_so_far(log, _db(), sources)
        started = time.perf_counter()
        if is_sweep(event):
            report = detector.sweep(sources)
        elif is_job_state_change(event):
            report = detector.poll_upgrades()
        else:
            report = detector.handle(refs)
        obs.report_detector(log, _db(), report, first_seq, time.perf_counter() - started)
    return {
        "applied": [chunk for _, chunk in report.applied],
        "records": report.records,
        "rejects": report.rejects,
        "detections": report.detections,
        "files": report.files,
        "ended": sorted(report.ended),
    }
