"""A fresh database and a running Stratum (or the bare baseline app) for a benchmark.

The database lives on an embedded PostgreSQL in a temporary directory (deleted at the
end), or on `$DATABASE_URL`'s server when that is set. Each fresh database is created,
migrated with the service's own migrations and dropped afterwards. The service runs
exactly as a user runs it: `python -m app serve --port P --workers W`.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.core.migrate import upgrade

# A fixed test secret: the load generator signs webhook deliveries with it.
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
READY_TIMEOUT = 90.0
BARE_APP = "bench.bare_app:app"


def plain_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    return f"{head.rpartition('/')[0]}/{name}{sep}{query}"


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_embedded: dict[str, Any] = {}


def database_server() -> str:
    """$DATABASE_URL, or an embedded server in a temporary directory (one per process)."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    if "url" not in _embedded:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        parent = Path(tempfile.mkdtemp(prefix="stratum-bench-"))
        # Registered first, so it runs after pgserver's own exit handler has stopped the
        # server and deleted pgdata.
        atexit.register(shutil.rmtree, parent, ignore_errors=True)
        server = pgserver.get_server(parent / "pgdata", cleanup_mode="delete")
        _embedded.update(url=server.get_uri(), server=server)
    return str(_embedded["url"])


def server_description() -> str:
    if os.environ.get("DATABASE_URL"):
        return "PostgreSQL at $DATABASE_URL"
    return "embedded PostgreSQL (pgserver, temporary data directory)"


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, migrated database; dropped when the block ends."""
    server = database_server()
    name = f"stratum_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    url = _with_database(server, name)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def postgres_info(url: str) -> tuple[int | None, str]:
    """The postmaster's pid when the server runs on this machine (for CPU accounting),
    and the server's version."""
    import psutil

    conn = await asyncpg.connect(plain_url(url))
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        version = str(await conn.fetchval("SHOW server_version"))
        try:
            # Our own backend is a child of the postmaster, if it is on this machine.
            process = psutil.Process(backend)
            parent = process.parent()
            if "postgres" in process.name() and parent is not None:
                return parent.pid, version
        except psutil.Error:
            pass
        return None, version
    finally:
        await conn.close()


async def backlog_drained(url: str, *, within: float = 300) -> None:
    """Wait (at most `within` seconds) until no customer is marked for re-classification.

    Events COPYed or posted mark their customers, and the service's worker works that
    backlog off first: figures are measured on the settled service, not while a one-off
    back-fill competes for the same cores."""
    deadline = time.monotonic() + within
    connection = await asyncpg.connect(plain_url(url))
    try:
        while time.monotonic() < deadline:
            if not await connection.fetchval("SELECT EXISTS (SELECT 1 FROM dirty_customers)"):
                return
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


async def create_admin_key(url: str) -> str:
    """A read,write,admin key made by the service's own function."""
    from app.apikeys import service
    from app.core.db import create_engine, create_sessionmaker
    from app.core.settings import Settings

    engine = create_engine(url, Settings(database_url=url))
    try:
        async with create_sessionmaker(engine)() as session:
            _, key = await service.create(session, name="bench", scopes=["read", "write", "admin"])
        return key
    finally:
        await engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "STRATUM_LOG_LEVEL": "WARNING",
        "STRATUM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # Nothing of the user's embedded data directory is touched.
        "STRATUM_DATA_DIR": tempfile.gettempdir() + "/stratum-bench-unused",
    }


@dataclass
class Server:
    base_url: str
    key: str
    pid: int
    workers: int
    command: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def _wait_ready(base: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before ready")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} was not ready within {READY_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextmanager
def running(
    url: str,
    *,
    workers: int,
    asgi: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`python -m app serve` (or, with `asgi`, another app served by `bench.serve` with the
    same uvicorn settings) on a free port, ready, until the block ends; then SIGTERM and a
    graceful shutdown."""
    port = free_port()
    args = ["-m", "app", "serve"] if asgi is None else ["-m", "bench.serve", asgi]
    command = [sys.executable, *args, "--port", str(port), "--workers", str(workers)]
    # The bare app has no auth; the service (and its variants) get an admin key.
    key = "" if asgi == BARE_APP else asyncio.run(create_admin_key(url))
    process = subprocess.Popen(
        command, env={**server_env(url), **(env or {})}, stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, asgi or "app")
        yield Server(
            base_url=base,
            key=key,
            pid=process.pid,
            workers=workers,
            command=" ".join(["python", *args, "--workers", str(workers)]),
        )
    finally:
        _stop(process)
