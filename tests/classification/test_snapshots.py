"""Long histories are aggregated once a day; the answer must not change because of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import repository
from app.classification.repository import SNAPSHOT_MIN_EVENTS


async def _snapshots(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT count(*) FROM history_snapshots"))).scalar_one())


async def test_snapshot_gives_the_same_answer_and_follows_late_events(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start_of_day = now.replace(hour=0, minute=0, second=0)
    as_of = now.isoformat().replace("+00:00", "Z")
    events = []
    for i in range(SNAPSHOT_MIN_EVENTS + 50):
        at = start_of_day - timedelta(days=1 + i // 3, hours=i % 3)
        kind = "order" if i % 5 else ("feedback" if i % 2 else "inquiry")
        event = {
            "event_id": f"e-{i}",
            "customer_id": "big",
            "type": kind,
            "occurred_at": at.isoformat(),
        }
        if kind == "order":
            event["amount"] = f"{10 + i % 7}.25"
            event["margin"] = "1.10"
        if kind == "feedback":
            event["rating"] = i % 11
        events.append(event)
    # Today, after the day's start: the part a snapshot leaves to the request.
    if now > start_of_day + timedelta(seconds=2):
        events.append(
            {
                "event_id": "today",
                "customer_id": "big",
                "type": "order",
                "occurred_at": (start_of_day + timedelta(seconds=1)).isoformat(),
                "amount": "99",
            }
        )
    for i in range(0, len(events), 1000):
        response = await client.post(
            "/v1/events", json={"events": events[i : i + 1000]}, headers=writer
        )
        assert response.status_code == 200

    url = "/v1/customers/big/classification"
    first = await client.get(url, params={"as_of": as_of}, headers=writer)
    assert first.status_code == 200
    assert await _snapshots(session) == 1
    second = await client.get(url, params={"as_of": as_of}, headers=writer)
    assert second.content == first.content
    # The second answer did come from the snapshot: a doctored one shows through.
    await session.execute(
        text("UPDATE history_snapshots SET summary = jsonb_set(summary, '{orders}', '5000')")
    )
    await session.commit()
    doctored = (await client.get(url, params={"as_of": as_of}, headers=writer)).json()
    assert doctored["metrics"]["orders"] > 5000
    await session.execute(text("DELETE FROM history_snapshots"))
    await session.commit()
    assert (await client.get(url, params={"as_of": as_of}, headers=writer)).content == first.content

    late = {
        "event_id": "late",
        "customer_id": "big",
        "type": "order",
        "occurred_at": (start_of_day - timedelta(days=2)).isoformat(),
        "amount": "1000",
    }
    assert (
        await client.post("/v1/events", json={"events": [late]}, headers=writer)
    ).status_code == 200
    assert await _snapshots(session) == 0
    third = (await client.get(url, params={"as_of": as_of}, headers=writer)).json()
    orders_before = first.json()["metrics"]["orders"]
    assert third["metrics"]["orders"] == orders_before + 1


async def test_snapshot_rows_equal_the_full_aggregate(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    events = []
    for i in range(SNAPSHOT_MIN_EVENTS + 10):
        at = day - timedelta(hours=7 * i + 1)  # contacts land on both sides of 90 days back
        kind = ("order", "inquiry", "interaction", "feedback", "refund")[i % 5]
        event = {
            "event_id": f"s-{i}",
            "customer_id": "big",
            "type": kind,
            "occurred_at": at.isoformat(),
        }
        if kind in ("order", "refund"):
            event["amount"] = "3.50"
        if kind == "feedback":
            event["rating"] = i % 11
        events.append(event)
    for i in range(0, len(events), 1000):
        await client.post("/v1/events", json={"events": events[i : i + 1000]}, headers=writer)

    first = await repository.histories_for(session, external_ids=["big"], as_of=now)
    await session.commit()
    assert await _snapshots(session) == 1
    second = await repository.histories_for(session, external_ids=["big"], as_of=now)
    assert second["big"][0]["snap_upto"] is not None
    combined = dict(second["big"][0])
    whole = dict(first["big"][0])
    for key in (
        "orders",
        "order_days",
        "revenue",
        "refunds",
        "refund_count",
        "inquiries",
        "interactions",
        "recent_contacts",
        "feedback_count",
        "negative_feedback",
        "first_order_at",
        "last_order_at",
        "last_event_at",
        "first_seen_at",
        "max_gap",
        "last_gap",
    ):
        assert combined[key] == whole[key], key
    assert combined["rating_mean"] == pytest.approx(whole["rating_mean"])
    assert 0 < whole["recent_contacts"] < whole["inquiries"] + whole["interactions"]
