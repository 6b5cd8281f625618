"""The warm-up computes the population figures and the moves ledger before any view."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.dashboard import cache, flows, warmup
from tests.dashboard.support import seed


async def test_the_warm_up_leaves_figures_the_first_view_reuses(
    app: Any, client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await seed(client, writer, session)
    created = await client.post(
        "/v1/segments",
        json={
            "key": "cn",
            "name": "China",
            "rule": {"field": "country", "op": "eq", "value": "CN"},
        },
        headers=writer,
    )
    assert created.status_code == 201
    cache.forget()
    flows.forget()
    await warmup.warm_once(app.state.sessionmaker)
    warmed = cache._entries.get("population")
    assert warmed is not None and warmed.value.overview.classified > 0
    assert flows._ledger is not None
    # The first view is served from what the warm-up computed, not a new pass.
    async with app.state.sessionmaker() as own:
        entry = await cache.entry(own, "population", _never)
    assert entry is warmed
    # A customer-defined segment's size is warmed too.
    sizes = [key for key in cache._entries if isinstance(key, tuple) and key[:2] == ("size", "cn")]
    assert len(sizes) == 1


async def _never(session: AsyncSession) -> Any:
    raise AssertionError("the figures were computed again")
