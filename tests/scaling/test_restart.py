"""A real PostgreSQL restart while requests run: every answer is a 200 or a 503 problem
with Retry-After, never a 500, and the service recovers without a restart of its own."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.apikeys import service as apikeys
from app.core.db import create_engine, create_sessionmaker
from app.core.migrate import upgrade
from app.core.settings import Settings
from app.main import create_app
from bench.cluster import Node, postgres_bin, start_primary

BIN = postgres_bin()
pytestmark = pytest.mark.skipif(
    BIN is None, reason="no PostgreSQL server binaries (initdb, pg_ctl) found"
)


@pytest.fixture(scope="module")
def server() -> Iterator[Node]:
    assert BIN is not None
    root = Path(tempfile.mkdtemp(prefix="stratum-restart-"))
    node: Node | None = None
    try:
        node = start_primary(root, BIN)
        upgrade(node.url)
        yield node
    finally:
        if node is not None and node.running():
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_a_restart_under_load_is_503_then_recovered(server: Node) -> None:
    settings = Settings(
        database_url=server.url,
        log_level="WARNING",
        log_json=False,
        warm_models=False,
        db_connect_timeout_seconds=2,
    )
    engine = create_engine(server.url, settings)
    async with create_sessionmaker(engine)() as session:
        _, key = await apikeys.create(session, name="restart", scopes=["read", "write"])
    await engine.dispose()
    auth = {"Authorization": f"Bearer {key}"}
    app = create_app(settings, database_url=server.url)
    statuses: Counter[int] = Counter()
    problems: list[httpx.Response] = []
    stop = asyncio.Event()
    # A regression that leaves a request waiting forever fails here instead of hanging.
    async with asyncio.timeout(120), app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://stratum.test") as c:
            assert (await c.put("/v1/customers/s-1", json={}, headers=auth)).status_code == 201

            async def load(n: int) -> None:
                i = 0
                while not stop.is_set():
                    i += 1
                    for response in (
                        await c.get("/v1/customers/s-1", headers=auth),
                        await c.get("/v1/customers/s-1/classification", headers=auth),
                        await c.post(
                            "/v1/events",
                            json={
                                "events": [
                                    {
                                        "event_id": f"s-{n}-{i}",
                                        "customer_id": "s-1",
                                        "type": "inquiry",
                                        "occurred_at": "2026-03-01T00:00:00Z",
                                    }
                                ]
                            },
                            headers=auth,
                        ),
                    ):
                        statuses[response.status_code] += 1
                        if response.status_code == 503:
                            problems.append(response)
                    await asyncio.sleep(0.01)

            workers = [asyncio.create_task(load(n)) for n in range(4)]
            await asyncio.sleep(0.5)
            # The server goes down and comes back while the load goes on.
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.start)
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*workers)
            assert set(statuses) <= {200, 503}, statuses
            assert statuses[503] > 0  # it was down for a while
            for response in problems:
                assert response.headers["content-type"] == "application/problem+json"
                assert int(response.headers["retry-after"]) > 0
            for path in ("/v1/customers/s-1", "/v1/customers/s-1/classification"):
                assert (await c.get(path, headers=auth)).status_code == 200
