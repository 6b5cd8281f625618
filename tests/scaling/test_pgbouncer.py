"""The service behind PgBouncer in transaction pooling mode: writes, reads, a
classification and a batch, through the pooler."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.apikeys import service as apikeys
from app.core.db import create_engine, create_sessionmaker
from app.core.migrate import upgrade
from app.core.settings import Settings
from app.main import create_app
from bench.cluster import Bouncer, Node, postgres_bin, start_pgbouncer, start_primary

BIN = postgres_bin()
PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
)
pytestmark = [
    pytest.mark.skipif(BIN is None, reason="no PostgreSQL server binaries found"),
    pytest.mark.skipif(PGBOUNCER is None, reason="pgbouncer is not installed"),
]


@pytest.fixture(scope="module")
def bouncer() -> Iterator[tuple[Node, Bouncer]]:
    assert BIN is not None and PGBOUNCER is not None
    root = Path(tempfile.mkdtemp(prefix="stratum-pgbouncer-"))
    server: Node | None = None
    pooler: Bouncer | None = None
    try:
        server = start_primary(root, BIN)
        upgrade(server.url)  # migrations talk to the server itself
        pooler = start_pgbouncer(PGBOUNCER, server, root)
        yield server, pooler
    finally:
        if pooler is not None:
            pooler.stop()
        if server is not None and server.running():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
async def api(
    bouncer: tuple[Node, Bouncer],
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    _, pooler = bouncer
    settings = Settings(
        database_url=pooler.url,
        db_pgbouncer=True,
        log_level="WARNING",
        log_json=False,
        warm_models=False,
    )
    engine = create_engine(pooler.url, settings)
    async with create_sessionmaker(engine)() as session:
        _, key = await apikeys.create(session, name="pooled", scopes=["read", "write"])
    await engine.dispose()
    app = create_app(settings, database_url=pooler.url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://stratum.test") as c:
            yield c, {"Authorization": f"Bearer {key}"}


async def test_the_api_works_through_a_transaction_pooler(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, auth = api
    for i in range(12):  # more sessions than the pooler has server connections
        put = await client.put(f"/v1/customers/b-{i}", json={"country": "DE"}, headers=auth)
        assert put.status_code == 201, put.text
    events = [
        {
            "event_id": f"b-{i}-{j}",
            "customer_id": f"b-{i}",
            "type": "order",
            "occurred_at": f"2026-0{j + 1}-0{j + 1}T10:00:00Z",
            "amount": "50.00",
        }
        for i in range(12)
        for j in range(3)
    ]
    posted = await client.post("/v1/events", json={"events": events}, headers=auth)
    assert posted.status_code == 200, posted.text
    assert posted.json() == {"accepted": 36, "duplicates": 0}
    read = await client.get("/v1/customers/b-3", headers=auth)
    assert read.status_code == 200 and read.json()["country"] == "DE"
    classified = await client.get("/v1/customers/b-3/classification", headers=auth)
    assert classified.status_code == 200, classified.text
    assert classified.json()["metrics"]["orders"] == 3
    ids = [f"b-{i}" for i in range(12)]
    batch = await client.post("/v1/classifications/batch", json={"customer_ids": ids}, headers=auth)
    assert batch.status_code == 200, batch.text
    assert [item["customer_id"] for item in batch.json()["items"]] == ids
    listed = await client.get("/v1/customers?limit=5", headers=auth)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 5
