from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import create_engine, create_sessionmaker
from app.core.settings import Settings
from app.jobs import schedule
from app.policies.default import default_document
from app.policies.schemas import PolicyDocument


def _policy(**changes: Any) -> PolicyDocument:
    return PolicyDocument.model_validate({**default_document(), **changes})


def test_the_default_is_daily_at_an_hour_of_the_home_country() -> None:
    document = _policy(home_country="CN")
    assert document.schedule.every == "day" and document.schedule.hour == 3
    assert str(schedule.time_zone(document)) == "Asia/Shanghai"
    # 03:00 in Shanghai is 19:00 UTC the day before.
    assert schedule.latest_slot(document, datetime(2026, 6, 2, 1, 0, tzinfo=UTC)) == datetime(
        2026, 6, 1, 19, 0, tzinfo=UTC
    )
    assert schedule.latest_slot(document, datetime(2026, 6, 1, 18, 59, tzinfo=UTC)) == datetime(
        2026, 5, 31, 19, 0, tzinfo=UTC
    )


def test_a_zone_with_daylight_saving_keeps_the_wall_clock_hour() -> None:
    document = _policy(home_country="DE", schedule={"hour": 4})
    winter = schedule.latest_slot(document, datetime(2026, 1, 15, 12, tzinfo=UTC))
    summer = schedule.latest_slot(document, datetime(2026, 7, 15, 12, tzinfo=UTC))
    assert winter == datetime(2026, 1, 15, 3, tzinfo=UTC)
    assert summer == datetime(2026, 7, 15, 2, tzinfo=UTC)
    off = _policy(schedule={"enabled": False})
    assert schedule.latest_slot(off, datetime(2026, 7, 15, tzinfo=UTC)) is None


async def test_policy_schedule_is_validated(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    current = (await client.get("/v1/policy", headers=admin)).json()
    assert current["schedule"] == {"enabled": True, "every": "day", "hour": 3, "timezone": None}
    document = {k: v for k, v in current.items() if k not in ("version", "created_at")}
    for bad in ({"hour": 24}, {"timezone": "Mars/Olympus"}, {"every": "minute"}):
        response = await client.put("/v1/policy", json={**document, "schedule": bad}, headers=admin)
        assert response.status_code == 422, bad
    ok = await client.put(
        "/v1/policy", json={**document, "schedule": {"every": "hour"}}, headers=admin
    )
    assert ok.status_code == 200, ok.text


async def test_of_several_processes_exactly_one_starts_each_slot(
    app: Any, settings: Settings, database_url: str, session: AsyncSession
) -> None:
    engines = [create_engine(database_url, settings) for _ in range(3)]
    makers = [create_sessionmaker(e) for e in engines]
    now = datetime(2026, 6, 2, 1, 0, tzinfo=UTC)
    try:
        started = await asyncio.gather(*(schedule.tick(m, now=now) for m in makers * 2))
        again = await schedule.tick(makers[0], now=now)
        tomorrow = await schedule.tick(makers[1], now=datetime(2026, 6, 3, 1, 0, tzinfo=UTC))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(job is not None for job in started) == 1
    assert again is None and tomorrow is not None
    rows = (await session.execute(text("SELECT schedule_slot FROM jobs ORDER BY id"))).all()
    assert [r[0] for r in rows] == [
        "recompute/day/2026-06-01T19:00:00+00:00",
        "recompute/day/2026-06-02T19:00:00+00:00",
    ]
    tasks = (await session.execute(text("SELECT count(*) FROM pgqueuer"))).scalar_one()
    assert tasks == 2
