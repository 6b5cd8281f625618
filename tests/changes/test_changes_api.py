from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.changes.service import ChangeFilter, statement
from app.core.db import raw_connection

T = datetime(2026, 6, 1, tzinfo=UTC)


async def _customers(session: AsyncSession, n: int) -> list[int]:
    rows = await session.execute(
        text(
            "INSERT INTO customers (external_id) SELECT 'c-' || g FROM generate_series(1, :n) g "
            "RETURNING id"
        ),
        {"n": n},
    )
    return [r[0] for r in rows]


async def _change(
    session: AsyncSession,
    customer: int,
    as_of: datetime,
    before: tuple[str, str] | None,
    after: tuple[str, str],
) -> None:
    await session.execute(
        text(
            "INSERT INTO classification_changes (customer_id, as_of, policy_version, from_tier, "
            "to_tier, from_stage, to_stage) VALUES (:c, :t, 1, :ft, :tt, :fs, :ts)"
        ),
        {
            "c": customer,
            "t": as_of,
            "ft": before[0] if before else None,
            "fs": before[1] if before else None,
            "tt": after[0],
            "ts": after[1],
        },
    )


async def _get(client: httpx.AsyncClient, headers: dict[str, str], query: str) -> dict[str, Any]:
    response = await client.get(f"/v1/classification-changes?{query}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_filters_order_and_pagination(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    a, b = await _customers(session, 2)
    await _change(session, a, T, None, ("mid", "new"))
    await _change(session, b, T, None, ("low", "new"))
    await _change(session, a, T + timedelta(days=3), ("mid", "new"), ("high", "returning"))
    await _change(session, b, T + timedelta(days=9), ("low", "new"), ("low", "at_risk"))
    await session.commit()

    everything = await _get(client, reader, "limit=1000")
    assert [(c["customer_id"], c["to"]["tier"]) for c in everything["items"]] == [
        ("c-1", "mid"),
        ("c-2", "low"),
        ("c-1", "high"),
        ("c-2", "low"),
    ]
    first = everything["items"][0]
    assert first == {
        "customer_id": "c-1",
        "as_of": "2026-06-01T00:00:00Z",
        "policy_version": 1,
        "from": None,
        "to": {"tier": "mid", "stage": "new"},
    }
    assert everything["items"][2]["from"] == {"tier": "mid", "stage": "new"}

    week = await _get(
        client,
        reader,
        "since=2026-06-01T00:00:01Z&until=2026-06-08T00:00:00Z&from_tier=mid&to_tier=high",
    )
    assert [c["customer_id"] for c in week["items"]] == ["c-1"]
    assert [
        c["to"]["stage"] for c in (await _get(client, reader, "to_stage=at_risk"))["items"]
    ] == ["at_risk"]
    assert len((await _get(client, reader, "customer_id=c-2"))["items"]) == 2
    assert (await _get(client, reader, "customer_id=nobody"))["items"] == []
    assert len((await _get(client, reader, "from_stage=new"))["items"]) == 2

    seen = []
    cursor = None
    while True:
        page = await _get(client, reader, "limit=1" + (f"&cursor={cursor}" if cursor else ""))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything["items"]


async def test_bad_filters_are_422(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    for query in (
        "since=yesterday",
        "since=2026-06-01T00:00:00",
        "to_tier=gold",
        "cursor=nonsense",
        "since=2026-06-09T00:00:00Z&until=2026-06-01T00:00:00Z",
        "limit=0",
    ):
        response = await client.get(f"/v1/classification-changes?{query}", headers=reader)
        assert response.status_code == 422, query
        assert response.headers["content-type"].startswith("application/problem+json")


async def _plan(session: AsyncSession, filters: ChangeFilter) -> str:
    compiled = statement(filters, after=(T, 5), limit=50).compile(
        dialect=session.get_bind().dialect
    )
    params = [compiled.params[name] for name in compiled.positiontup or []]
    conn = await raw_connection(session)
    await conn.execute("SET LOCAL enable_seqscan = off")
    rows = await conn.fetch("EXPLAIN " + str(compiled), *params)
    return "\n".join(r[0] for r in rows)


async def test_a_week_of_changes_is_an_index_range_scan(session: AsyncSession) -> None:
    ids = await _customers(session, 2000)
    await session.execute(
        text(
            "INSERT INTO classification_changes (customer_id, as_of, policy_version, to_tier, "
            "to_stage) SELECT id, CAST(:t AS timestamptz) + (id % 30) * interval '1 day', 1, "
            "(ARRAY['high','mid','low'])[1 + id % 3], 'new' FROM customers"
        ),
        {"t": T - timedelta(days=30)},
    )
    await session.execute(text("ANALYZE classification_changes"))
    week = ChangeFilter(since=T - timedelta(days=7), until=T, from_tier="mid", to_tier="high")
    plan = await _plan(session, week)
    assert "ix_classification_changes_" in plan, plan
    assert "Seq Scan on classification_changes" not in plan, plan
    # The order comes from the index: no sort of the whole week before the limit.
    assert "Sort" not in plan, plan
    one = await _plan(session, ChangeFilter(customer_id="c-7"))
    assert "ix_classification_changes_customer_as_of_id" in one, one
    await session.rollback()
    assert ids
