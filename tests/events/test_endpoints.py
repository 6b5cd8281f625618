from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


def order(event_id: str, customer: str = "c-1", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer,
        "type": "order",
        "occurred_at": "2026-03-01T10:00:00Z",
        "amount": "10.00",
        **fields,
    }


async def _post(
    client: httpx.AsyncClient, headers: dict[str, str], events: list[dict[str, Any]]
) -> httpx.Response:
    return await client.post("/v1/events", json={"events": events}, headers=headers)


async def _count(session: AsyncSession, sql: str = "SELECT count(*) FROM events") -> int:
    return int((await session.execute(text(sql))).scalar_one())


async def test_ingest_is_idempotent(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    events = [order("o-1"), order("o-2", "c-2"), order("o-1")]
    first = await _post(client, writer, events)
    assert first.status_code == 200
    assert first.json() == {"accepted": 2, "duplicates": 1}
    again = await _post(client, writer, events)
    assert again.json() == {"accepted": 0, "duplicates": 3}
    assert await _count(session) == 2
    assert await _count(session, "SELECT count(*) FROM customers") == 2


async def test_money_is_exact_and_converted(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    events = [
        order("o-1", amount="0.1"),
        order("o-2", amount=0.2),
        order("o-3", amount="100", currency="eur", margin="-5.5"),
    ]
    assert (await _post(client, writer, events)).status_code == 200
    total = (
        await session.execute(
            text("SELECT sum(amount_base) FROM events WHERE event_id IN ('o-1', 'o-2')")
        )
    ).scalar_one()
    assert str(total.normalize()) == "0.3"
    row = (
        await session.execute(
            text(
                "SELECT amount, currency, amount_base, margin_base FROM events WHERE event_id='o-3'"
            )
        )
    ).one()
    assert (str(row[0].normalize()), row[1]) == ("1E+2", "EUR")
    assert row[2] == 108  # the default policy values one EUR at 1.08 USD
    assert str(row[3].normalize()) == "-5.94"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (order("o", occurred_at="2026-03-01T10:00:00"), "events[0].occurred_at"),
        (order("o", occurred_at="2999-03-01T10:00:00Z"), "events[0].occurred_at"),
        (order("o", amount="-1"), "events[0].amount"),
        (order("o", amount="NaN"), "events[0].amount"),
        (order("o", amount="1e999"), "events[0].amount"),
        (order("o", amount=True), "events[0].amount"),
        (order("o", amount=None), "events[0]"),
        (order("o", currency="XXX1"), "events[0].currency"),
        (order("o", type="purchase"), "events[0].type"),
        ({**order("o"), "customer_id": "bad id"}, "events[0].customer_id"),
        ({**order("o"), "event_id": ""}, "events[0].event_id"),
        ({**order("o"), "type": "inquiry"}, "events[0]"),
        ({**order("o"), "type": "feedback", "amount": None, "rating": 11}, "events[0].rating"),
        ({**order("o"), "type": "feedback", "amount": None, "rating": 7.5}, "events[0].rating"),
        ({**order("o"), "surprise": 1}, "events[0].surprise"),
        (order("o", attributes=[1]), "events[0].attributes"),
    ],
)
async def test_bad_item_is_named_and_nothing_stored(
    client: httpx.AsyncClient,
    writer: dict[str, str],
    session: AsyncSession,
    event: dict[str, Any],
    field: str,
) -> None:
    response = await _post(client, writer, [order("good-1"), event, order("good-2")])
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert errors[0]["field"].startswith(field.replace("[0]", "[1]"))
    assert errors[0]["index"] == 1
    assert await _count(session) == 0
    assert await _count(session, "SELECT count(*) FROM customers") == 0


async def test_every_bad_item_is_named(client: httpx.AsyncClient, writer: dict[str, str]) -> None:
    response = await _post(
        client, writer, [order("a", amount="-1"), order("b"), order("c", occurred_at="x")]
    )
    assert sorted(e["index"] for e in response.json()["errors"]) == [0, 2]


async def test_currency_without_rate_is_rejected(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    response = await _post(client, writer, [order("a"), order("b", currency="ISK")])
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "events[1].currency",
        "message": "no exchange rate for ISK in the policy (base USD)",
        "index": 1,
    }
    assert await _count(session) == 0


@pytest.mark.parametrize("size", [0, 1001])
async def test_batch_size_limits(
    client: httpx.AsyncClient, writer: dict[str, str], size: int
) -> None:
    response = await _post(client, writer, [order(f"o-{i}") for i in range(size)])
    assert response.status_code == 422


async def test_auth_and_media_type(
    client: httpx.AsyncClient, reader: dict[str, str], writer: dict[str, str]
) -> None:
    assert (await _post(client, {}, [order("o")])).status_code == 401
    assert (await _post(client, reader, [order("o")])).status_code == 403
    not_json = await client.post(
        "/v1/events", content=b"[", headers={**writer, "content-type": "application/json"}
    )
    assert not_json.status_code == 400
    form = await client.post(
        "/v1/events",
        content=b"a=1",
        headers={**writer, "content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415


async def test_concurrent_overlapping_batches_lose_and_double_nothing(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    # Ten clients send overlapping slices of 300 events for the same few customers.
    batches = [
        [order(f"o-{i}", f"c-{i % 3}", amount="1.5") for i in range(start, start + 100)]
        for start in range(0, 300, 30)
    ]
    responses = await asyncio.gather(*(_post(client, writer, b) for b in batches))
    assert all(r.status_code == 200 for r in responses)
    accepted = sum(r.json()["accepted"] for r in responses)
    duplicates = sum(r.json()["duplicates"] for r in responses)
    assert accepted == await _count(session) == 370
    assert accepted + duplicates == 1000
    assert await _count(session, "SELECT count(*) FROM customers") == 3
    revenue = (await session.execute(text("SELECT sum(amount_base) FROM events"))).scalar_one()
    assert revenue == 555


async def test_customer_events_listing(client: httpx.AsyncClient, writer: dict[str, str]) -> None:
    await _post(client, writer, [order(f"o-{i}", attributes={"sku": i}) for i in range(3)])
    page = (await client.get("/v1/customers/c-1/events?limit=2", headers=writer)).json()
    assert [e["event_id"] for e in page["items"]] == ["o-2", "o-1"]
    assert page["items"][0]["amount"] == "10"
    assert page["items"][0]["attributes"] == {"sku": 2}
    rest = (
        await client.get(f"/v1/customers/c-1/events?cursor={page['next_cursor']}", headers=writer)
    ).json()
    assert [e["event_id"] for e in rest["items"]] == ["o-0"]
    missing = await client.get("/v1/customers/nobody/events", headers=writer)
    assert missing.status_code == 404


async def test_erasure_removes_events(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await client.put("/v1/customers/c-1", json={"email": "li@example.cn"}, headers=writer)
    await _post(client, writer, [order("o-1", attributes={"note": "li@example.cn"})])
    assert (await client.delete("/v1/customers/c-1", headers=writer)).status_code == 204
    for table in ("customers", "events", "classifications", "classification_changes"):
        leaks = await _count(
            session, f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%li@example.cn%'"
        )
        assert leaks == 0
    assert await _count(session) == 0
