"""A real primary and a real streaming replica: lag-tolerant reads go to the replica,
fall back to the primary while the replica is down, and go on from the replica while the
primary is down, when writes answer 503."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.apikeys import service as apikeys
from app.core.db import create_engine, create_sessionmaker
from app.core.migrate import upgrade
from app.core.settings import Settings
from app.main import create_app
from bench.cluster import Node, postgres_bin, start_primary, start_replica, wait_for

BIN = postgres_bin()
pytestmark = pytest.mark.skipif(
    BIN is None,
    reason="no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) found in the "
    "pgserver wheel or under /usr/lib/postgresql",
)


@pytest.fixture(scope="module")
def nodes() -> Iterator[tuple[Node, Node]]:
    assert BIN is not None
    root = Path(tempfile.mkdtemp(prefix="stratum-replica-"))
    started: list[Node] = []
    try:
        primary = start_primary(root, BIN)
        started.append(primary)
        upgrade(primary.url)
        replica = start_replica(primary, root)
        started.append(replica)
        yield primary, replica
    finally:
        for node in started:
            if node.running():
                node.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
async def api(nodes: tuple[Node, Node]) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    primary, replica = nodes
    settings = Settings(
        database_url=primary.url,
        read_replica_url=replica.url,
        log_level="WARNING",
        log_json=False,
        warm_models=False,
        replica_retry_seconds=0.5,
        db_connect_timeout_seconds=2,
    )
    engine = create_engine(primary.url, settings)
    async with create_sessionmaker(engine)() as session:
        _, key = await apikeys.create(session, name="scaling", scopes=["read", "write", "admin"])
    await engine.dispose()
    app = create_app(settings, database_url=primary.url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://stratum.test") as c:
            yield c, {"Authorization": f"Bearer {key}"}


async def _idle() -> None:
    # The servers were stopped by blocking calls on this event loop; a server's loop
    # sees the closed connections while it waits for requests, so give this one a turn.
    await asyncio.sleep(0.5)


async def _replicated(replica: Node, external_id: str) -> None:
    await wait_for(
        replica.url, "SELECT count(*) > 0 FROM customers WHERE external_id = $1", external_id
    )


async def _seed(client: httpx.AsyncClient, auth: dict[str, str], customer: str) -> None:
    put = await client.put(f"/v1/customers/{customer}", json={"country": "DE"}, headers=auth)
    assert put.status_code in (200, 201), put.text
    events: list[dict[str, Any]] = [
        {
            "event_id": f"{customer}-o{i}",
            "customer_id": customer,
            "type": "order",
            "occurred_at": f"2026-0{i + 1}-10T09:30:00Z",
            "amount": "100.00",
        }
        for i in range(3)
    ]
    posted = await client.post("/v1/events", json={"events": events}, headers=auth)
    assert posted.status_code == 200, posted.text


async def test_reads_survive_either_server_going_down(
    nodes: tuple[Node, Node], api: tuple[httpx.AsyncClient, dict[str, str]]
) -> None:
    primary, replica = nodes
    client, auth = api
    await _seed(client, auth, "r-1")
    await _replicated(replica, "r-1")
    # The first classification fits and stores today's model (on the primary).
    first = await client.get("/v1/customers/r-1/classification", headers=auth)
    assert first.status_code == 200, first.text
    await wait_for(replica.url, "SELECT count(*) > 0 FROM population_fits")
    # Reads are served by the replica: the service holds connections there.
    assert (await client.get("/v1/customers/r-1", headers=auth)).status_code == 200
    await wait_for(
        replica.url,
        "SELECT count(*) > 0 FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )

    # Replica down: reads fall back to the primary, writes go on.
    replica.stop()
    await _idle()
    for path in ("/v1/customers/r-1", "/v1/customers/r-1/classification", "/v1/customers"):
        response = await client.get(path, headers=auth)
        assert response.status_code == 200, (path, response.text)
    await _seed(client, auth, "r-2")
    assert (await client.get("/v1/customers/r-2", headers=auth)).status_code == 200

    # Replica back and caught up; then the primary goes down.
    replica.start()
    await _replicated(replica, "r-2")
    primary.stop()
    await _idle()
    try:
        for path in (
            "/v1/customers/r-2",
            "/v1/customers/r-1/classification",
            "/v1/customers?country=DE",
            "/v1/segments/overview",
        ):
            response = await client.get(path, headers=auth)
            assert response.status_code == 200, (path, response.text)
        batch = await client.post(
            "/v1/classifications/batch", json={"customer_ids": ["r-1", "r-2"]}, headers=auth
        )
        assert batch.status_code == 200, batch.text
        assert [i["customer_id"] for i in batch.json()["items"]] == ["r-1", "r-2"]
        write = await client.put("/v1/customers/r-3", json={"country": "FR"}, headers=auth)
        assert write.status_code == 503, write.text
        assert write.headers["content-type"] == "application/problem+json"
        assert int(write.headers["retry-after"]) > 0
        events = await client.post(
            "/v1/events",
            json={
                "events": [
                    {
                        "event_id": "x-1",
                        "customer_id": "r-1",
                        "type": "inquiry",
                        "occurred_at": "2026-03-01T00:00:00Z",
                    }
                ]
            },
            headers=auth,
        )
        assert events.status_code == 503, events.text
    finally:
        primary.start()

    # The primary is back: writes work again without a restart of the service.
    await _seed(client, auth, "r-3")
    await _replicated(replica, "r-3")
    assert (await client.get("/v1/customers/r-3", headers=auth)).status_code == 200


async def test_a_key_created_a_moment_ago_is_not_refused_for_lag(
    nodes: tuple[Node, Node], api: tuple[httpx.AsyncClient, dict[str, str]]
) -> None:
    primary, _ = nodes
    client, _ = api
    settings = Settings(database_url=primary.url)
    engine = create_engine(primary.url, settings)
    async with create_sessionmaker(engine)() as session:
        _, key = await apikeys.create(session, name="fresh", scopes=["read"])
    await engine.dispose()
    # Asked at once: the replica may not have the key yet; the primary is asked then.
    response = await client.get("/v1/customers", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
