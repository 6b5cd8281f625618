from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.core.db import create_engine, create_sessionmaker
from app.core.settings import Settings
from app.jobs.worker import Worker

# Events are placed relative to now: incremental re-classification works as of now.
T = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


def fast(settings: Settings, **overrides: Any) -> Settings:
    """The test settings with every background interval a fraction of a second."""
    values: dict[str, Any] = {
        "worker": True,
        "schedules": False,
        "worker_poll_seconds": 0.2,
        "job_heartbeat_seconds": 2.0,
        "incremental_interval_seconds": 0.1,
        "incremental_settle_seconds": 0.1,
        "incremental_max_delay_seconds": 1.0,
        "schedule_check_seconds": 0.2,
        "delivery_interval_seconds": 0.05,
        "delivery_timeout_seconds": 1.0,
        "delivery_backoff_first_seconds": 0.1,
        "delivery_backoff_max_seconds": 0.4,
        "delivery_lease_seconds": 2.0,
        "metrics_interval_seconds": 0.2,
        "outbound_allow_private_networks": True,
        **overrides,
    }
    return settings.model_copy(update=values)


@pytest.fixture(autouse=True)
async def _clean_queue(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    async with app.state.engine.begin() as conn:
        await conn.execute(text("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_schedules"))


@asynccontextmanager
async def running_worker(settings: Settings, database_url: str) -> AsyncIterator[Worker]:
    """A worker with its own engine, as in the service (and as a separate process)."""
    engine = create_engine(database_url, settings)
    running = Worker(create_sessionmaker(engine), settings, database_url=database_url)
    running.start()
    try:
        yield running
    finally:
        await running.stop()
        await engine.dispose()


@pytest.fixture
async def worker(settings: Settings, database_url: str) -> AsyncIterator[Worker]:
    async with running_worker(fast(settings), database_url) as running:
        yield running


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within: float = 20.0, every: float = 0.1
) -> Any:
    """Poll until check() returns something truthy; its value."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s (last: {value!r})")
        await asyncio.sleep(every)


async def orders(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    customer: str,
    days: list[int],
    *,
    at: datetime = T,
) -> None:
    events = [
        {
            "event_id": f"{customer}-{d}-{at.timestamp()}",
            "customer_id": customer,
            "type": "order",
            "occurred_at": (at - timedelta(days=d)).isoformat(),
            "amount": "50",
        }
        for d in days
    ]
    response = await client.post("/v1/events", json={"events": events}, headers=headers)
    assert response.status_code == 200, response.text
