"""A real PostgreSQL for the tests: DATABASE_URL's server, or an embedded one."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from app.core.embedded import start_embedded


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return start_embedded(Path(tempfile.mkdtemp(prefix="stratum-test-")), cleanup="delete")


def _replace_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    head, sep, query = url.partition("?")
    scheme_host, _, _ = head.rpartition("/")
    return f"{scheme_host}/{name}{sep}{query}"


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_plain(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def test_database() -> Iterator[str]:
    """A fresh database for one test session (and its URL), dropped afterwards."""
    server = _server_url()
    name = f"stratum_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield _replace_database(server, name)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
