"""Bounded waits and lost connections: a full pool, a lock wait over its timeout and
backends terminated under load are 503 problems with Retry-After, never 500s, and the
service recovers by itself."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from app.core.settings import Settings
from app.main import create_app


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _client(settings: Settings, url: str) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    app = create_app(settings, database_url=url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://stratum.test") as c:
            yield c, app


def _settings(url: str, **overrides: object) -> Settings:
    return Settings(
        database_url=url, log_level="WARNING", log_json=False, warm_models=False, **overrides
    )


def _is_503_problem(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.headers["content-type"] == "application/problem+json"
        and int(response.headers["retry-after"]) > 0
    )


@pytest.fixture
async def seeded(client: httpx.AsyncClient, writer: dict[str, str]) -> dict[str, str]:
    put = await client.put("/v1/customers/u-1", json={"country": "DE"}, headers=writer)
    assert put.status_code == 201
    return writer


async def test_an_exhausted_pool_is_a_503(database_url: str, seeded: dict[str, str]) -> None:
    settings = _settings(
        database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.2
    )
    async for client, app in _client(settings, database_url):
        assert (await client.get("/v1/customers/u-1", headers=seeded)).status_code == 200
        # The only connection is held elsewhere in the process.
        async with app.state.engine.connect() as held:  # type: ignore[attr-defined]
            await held.execute(text("SELECT 1"))
            response = await client.get("/v1/customers/u-1", headers=seeded)
            assert _is_503_problem(response), response.text
        assert (await client.get("/v1/customers/u-1", headers=seeded)).status_code == 200


async def test_a_lock_wait_over_its_timeout_is_a_503(
    database_url: str, seeded: dict[str, str]
) -> None:
    settings = _settings(database_url, db_lock_timeout_seconds=0.2)
    async for client, _ in _client(settings, database_url):
        blocker = await asyncpg.connect(_plain(database_url))
        try:
            async with blocker.transaction():
                await blocker.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
                response = await client.put(
                    "/v1/customers/u-1", json={"country": "FR"}, headers=seeded
                )
                assert _is_503_problem(response), response.text
        finally:
            await blocker.close()
        after = await client.get("/v1/customers/u-1", headers=seeded)
        assert after.status_code == 200 and after.json()["country"] == "DE"


async def test_request_connections_carry_statement_and_lock_timeouts(
    database_url: str,
) -> None:
    settings = _settings(database_url, db_statement_timeout_seconds=7, db_lock_timeout_seconds=3)
    async for _, app in _client(settings, database_url):
        async with app.state.engine.connect() as conn:  # type: ignore[attr-defined]
            assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() == "7s"
            assert (await conn.execute(text("SHOW lock_timeout"))).scalar_one() == "3s"


async def test_terminated_backends_under_load_are_503_then_recovered(
    client: httpx.AsyncClient, seeded: dict[str, str], database_url: str
) -> None:
    """What a PostgreSQL restart does to open connections, while requests run."""
    statuses: Counter[int] = Counter()
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            for path in ("/v1/customers/u-1", "/v1/customers/u-1/classification"):
                statuses[(await client.get(path, headers=seeded)).status_code] += 1
            put = await client.put("/v1/customers/u-1", json={"name": "x"}, headers=seeded)
            statuses[put.status_code] += 1

    killer = await asyncpg.connect(_plain(database_url))
    try:
        workers = [asyncio.create_task(load()) for _ in range(6)]
        for _ in range(5):
            await asyncio.sleep(0.3)
            await killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        stop.set()
        await asyncio.gather(*workers)
    finally:
        await killer.close()
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0
    # Recovered without a restart of the service: every request answers again.
    for _ in range(3):
        assert (await client.get("/v1/customers/u-1", headers=seeded)).status_code == 200
