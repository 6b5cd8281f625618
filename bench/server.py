"""A fresh database and a running Stratum for a benchmark run."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from app.core.embedded import start_embedded
from app.core.migrate import upgrade

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    return f"{head.rpartition('/')[0]}/{name}{sep}{query}"


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, migrated database on $DATABASE_URL's server or on an embedded one."""
    server = os.environ.get("DATABASE_URL") or start_embedded(
        Path(tempfile.mkdtemp(prefix="stratum-bench-")), cleanup="delete"
    )
    name = f"stratum_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    url = _with_database(server, name)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base_url: str
    key: str
    process: subprocess.Popen[bytes]


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "STRATUM_LOG_LEVEL": "WARNING",
        "STRATUM_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }


def create_key(url: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "apikey",
            "create",
            "--name",
            "bench",
            "--scopes",
            "read,write,admin",
        ],
        env=_env(url),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@contextmanager
def running(url: str, *, workers: int, module: str = "app") -> Iterator[Server]:
    """`python -m app serve` (or the bare baseline app) on a free port until the block ends."""
    port = free_port()
    if module == "app":
        command = [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            module,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    process = subprocess.Popen(command, env=_env(url), stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{module} did not become ready")
        yield Server(base_url=base, key=create_key(url) if module == "app" else "", process=process)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
