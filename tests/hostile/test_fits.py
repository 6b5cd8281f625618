"""Fits cannot be forced without bound: horizons are a small set, waits end, storage is capped."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import get_settings
from tests.hostile.support import PROBLEM, order


async def _customer(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    posted = await client.post("/v1/events", json={"events": [order()]}, headers=headers)
    assert posted.status_code == 200


async def test_an_arbitrary_horizon_is_422_not_a_new_fit(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    await _customer(client, admin)
    response = await client.get(
        "/v1/customers/c-1/classification", params={"horizon_days": 17}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "horizon_days"
    fits = await session.execute(text("SELECT count(*) FROM population_fits"))
    assert fits.scalar_one() == 0
    allowed = await client.get(
        "/v1/customers/c-1/classification", params={"horizon_days": 90}, headers=admin
    )
    assert allowed.status_code == 200


async def test_a_request_waiting_for_a_fit_gets_503_with_retry_after(
    app: object,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _customer(client, admin)
    monkeypatch.setattr(get_settings(), "fit_wait_seconds", 0.3)
    engine = app.state.engine  # type: ignore[attr-defined]
    async with engine.connect() as holder:
        # Another process is fitting: it holds the one fitting slot.
        await holder.execute(text("SELECT pg_advisory_lock(4170004)"))
        try:
            response = await client.get("/v1/customers/c-1/classification", headers=admin)
        finally:
            await holder.execute(text("SELECT pg_advisory_unlock(4170004)"))
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "10"
    again = await client.get("/v1/customers/c-1/classification", headers=admin)
    assert again.status_code == 200


async def test_stored_fits_are_capped(session: AsyncSession) -> None:
    for day in range(1, 41):
        await session.execute(
            text(
                "INSERT INTO population_fits (policy_version, cutoff, horizon_days, model,"
                " created_at) VALUES (1, make_timestamptz(2026, 1, :day % 28 + 1, 0, 0, 0, 'UTC')"
                " + make_interval(months => :day / 28), 180, '{}',"
                " now() + make_interval(secs => :day))"
            ),
            {"day": day},
        )
    await session.commit()
    count = await session.execute(text("SELECT count(*), min(created_at) FROM population_fits"))
    stored, _ = count.one()
    assert stored == 32
