"""Start (or reach) the local services: PostgreSQL and an S3-compatible endpoint.

Embedded defaults make ``txnpipe run`` work on a bare machine; both can be swapped for a
real server by URL, which is how CI also covers a PostgreSQL reached over TCP.
"""
from __future__ import annotations

import logging
import os
import secrets
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3

REGION = "us-east-1"
# moto checks that requests are signed, not by whom: a random key per process signs them, so
# no credential lives in the code and real AWS credentials never reach the local endpoint.
LOCAL_KEY = secrets.token_hex(8)
_EMBEDDED: dict[str, Any] = {}


@contextmanager
def postgres(url: str | None, data_dir: Path | None = None) -> Iterator[str]:
    """The given URL, or an embedded server (pgserver) for the duration.

    The embedded server's data is thrown away, unless ``data_dir`` keeps it (so that
    ``txnpipe status --pg-data DIR`` can look at a finished local run).
    """
    if url:
        yield url
        return
    warnings.filterwarnings("ignore", module="platformdirs")
    import pgserver

    with ExitStack() as stack:
        if data_dir is None:
            pgdata = stack.enter_context(tempfile.TemporaryDirectory(prefix="txnpipe-pg-"))
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            pgdata = str(data_dir.resolve())
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        url = server.get_uri()
        _EMBEDDED[url] = server
        _local_settings(url)
        try:
            yield url
        finally:
            _EMBEDDED.pop(url, None)
            server.cleanup()


def _local_settings(url: str) -> None:
    """A commit of the embedded server does not wait for its WAL to reach the disk: a
    crash of the process loses nothing, one of the machine can lose the last commits
    (which the pipeline then applies again). Its buffers are an eighth of the machine's
    memory, up to 1 GiB: PostgreSQL's 128 MB default holds the working set (the pairs,
    the weights, the history's tail) of a 1x stream but not of a 10x one, whose every
    chunk then waits for evictions. A server given by URL keeps its own settings."""
    import psycopg
    from psycopg import sql

    buffers_mb = _buffers_mb()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        conn.execute(
            sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(sql.Literal(f"{buffers_mb}MB"))
        )
        conn.execute("SELECT pg_reload_conf()")
        row = conn.execute(  # in pages of 8 kB
            "SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()
    if row is None or row[0] != buffers_mb:  # a restart applies it, once per data directory
        restart_postgres(url)


def _buffers_mb() -> int:
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return max(128, min(1024, memory // 8 // 2**20))


def restart_postgres(url: str) -> bool:
    """Stop and start an embedded server (chaos); False for a server we did not start."""
    import pgserver

    server = _EMBEDDED.get(url)
    if server is None:
        return False
    pgserver.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata,
                    user=server.system_user, timeout=60)  # fmt: skip
    return True


@contextmanager
def s3_endpoint(url: str | None) -> Iterator[str]:
    """The given endpoint, or an in-process moto server on 127.0.0.1 (random port)."""
    if url:
        yield url
        return
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = _moto_server()
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _moto_server() -> Any:
    """moto's threaded server, with each host's backend looked up once, not per request.

    moto resolves a request's backend by listing its package directory on every request,
    under a lock; a replay makes thousands of requests, and that lookup was the largest
    single cost of the local run.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import ThreadedMotoServer

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self._backends:
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            from moto.moto_server.werkzeug_app import MotoRequestHandler
            from werkzeug.serving import make_server

            self._server = make_server(self._ip_address, self._port, Dispatcher(), True,
                                       request_handler=MotoRequestHandler)  # fmt: skip
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server(ip_address="127.0.0.1", port=0, verbose=False)


def client(service: str, endpoint: str) -> Any:
    """A client for a local endpoint; moto accepts any credentials, real AWS gets none here."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
    )
