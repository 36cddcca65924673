"""Start (or reach) the local services: PostgreSQL and an S3-compatible endpoint.

Embedded defaults make ``txnpipe run`` work on a bare machine; both can be swapped for a
real server by URL, which is how CI also covers a PostgreSQL reached over TCP.
"""
from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from txnpipe.core.errors import TxnpipeError, one_line

REGION = "us-east-1"
# moto checks that requests are signed, not by whom: a random key per process signs them, so
# no credential lives in the code and real AWS credentials never reach the local endpoint.
LOCAL_KEY = secrets.token_hex(8)
_EMBEDDED: dict[str, Any] = {}


@contextmanager
def started(database_url: str | None, data_dir: Path | None, endpoint: str | None,
            bucket: str) -> Iterator[tuple[str, str]]:  # fmt: skip
    """A run's PostgreSQL and S3 endpoint (``postgres``, ``s3_endpoint``), each reached once
    before any work. The server starts on a thread while the endpoint starts here: an
    embedded server's initdb and start (about 0.9 s, in processes of their own) and moto's
    start and first request (about as long, in this process) ran one after the other."""
    server = postgres(database_url, data_dir)
    pool = ThreadPoolExecutor(1, thread_name_prefix="txnpipe-pg-start")
    starting = pool.submit(server.__enter__)
    pool.shutdown(wait=False)

    def stop_server(*exc: Any) -> bool:
        """Once it has started, even when the endpoint failed meanwhile."""
        return starting.exception() is None and bool(server.__exit__(*exc))

    with ExitStack() as stack:
        stack.push(stop_server)
        s3_url = stack.enter_context(s3_endpoint(endpoint))
        check_s3(s3_url, bucket)
        db_url = starting.result()
        check_database(db_url)
        yield db_url, s3_url


@contextmanager
def postgres(url: str | None, data_dir: Path | None = None) -> Iterator[str]:
    """The given URL, or an embedded server for the duration (``embedded_pg``).

    The embedded server's data is thrown away, unless ``data_dir`` keeps it (so that
    ``txnpipe status --pg-data DIR`` can look at a finished local run).
    """
    if url:
        yield url
        return
    from txnpipe.local.embedded_pg import embedded

    with embedded(data_dir, embedded_settings()) as server:
        _EMBEDDED[server.url] = server
        try:
            yield server.url
        finally:
            _EMBEDDED.pop(server.url, None)


@contextmanager
def postgres_to_read(data_dir: Path) -> Iterator[str]:
    """The embedded server of ``data_dir``: the one a live run owns (attached to, left
    running), or one started for the duration (``txnpipe status --pg-data``)."""
    from txnpipe.local.embedded_pg import DataDirectoryBusy, attached_url

    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres(None, data_dir))
        except DataDirectoryBusy:
            running = attached_url(data_dir)
            if running is None:
                raise
            url = running
        yield url


def embedded_settings() -> dict[str, str]:
    """A commit of the embedded server does not wait for its WAL to reach the disk: a
    crash of the process loses nothing, one of the machine can lose the last commits
    (which the pipeline then applies again). Its buffers are an eighth of the machine's
    memory, up to 256 MB. PostgreSQL's 128 MB default made a 10x stream's chunks wait for
    evictions (the median cost per chunk rose 24.8 to 35.5 ms over the stream); 256 MB keeps
    it flat, and the pages beyond them stay in the OS page cache. At 1 GiB the buffers kept
    filling until the end of a 10x run (the process tree 1.3x larger in its last quarter
    than in its second), no faster. A server given by URL keeps its own settings."""
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    buffers_mb = max(128, min(256, memory // 8 // 2**20))
    return {"synchronous_commit": "off", "shared_buffers": f"{buffers_mb}MB"}


def restart_postgres(url: str) -> bool:
    """Stop and start an embedded server (chaos); False for a server we did not start."""
    server = _EMBEDDED.get(url)
    if server is None:
        return False
    server.restart()
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
            # stop() waits for the loop to look at its flag: every 0.5 s by default, which
            # was half a second at the end of every local run
            self._server.serve_forever(poll_interval=0.05)

    return Server(ip_address="127.0.0.1", port=0, verbose=False)


def client(service: str, endpoint: str, config: Config | None = None) -> Any:
    """A client for a local endpoint; moto accepts any credentials, real AWS gets none here."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
        config=config,
    )


def check_database(url: str) -> None:
    """Reach the database once before any work (SPEC 5), naming what is wrong in one line;
    the URL is shown without its password."""
    import psycopg

    try:
        shown = _without_password(url)
    except psycopg.ProgrammingError as exc:
        raise TxnpipeError(f"--database-url is not a PostgreSQL URL or conninfo: "
                           f"{one_line(exc)}") from None  # fmt: skip
    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        raise TxnpipeError(f"cannot connect to the database {shown}: {one_line(exc)}") from None


def _without_password(url: str) -> str:
    import psycopg

    params = psycopg.conninfo.conninfo_to_dict(url)
    params.pop("password", None)
    return repr(psycopg.conninfo.make_conninfo(**params))


def check_s3(endpoint: str, bucket: str) -> None:
    """Reach the S3 endpoint once before any work, quickly: one attempt, short timeouts."""
    quick = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1})
    try:
        s3 = client("s3", endpoint, quick)
        s3.list_buckets()
    except ValueError as exc:  # botocore refuses a malformed endpoint URL
        raise TxnpipeError(f"--s3-endpoint {endpoint!r} is not a URL: {exc}") from None
    except (BotoCoreError, ClientError) as exc:
        raise TxnpipeError(f"cannot reach the S3 endpoint {endpoint!r}: {exc}") from None
