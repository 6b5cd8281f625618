from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

PROBLEM = "application/problem+json"


def order(event_id: str, customer: str = "c-1", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer,
        "type": "order",
        "occurred_at": "2026-03-01T10:00:00Z",
        "amount": "10.00",
        **fields,
    }


def event(event_id: str, kind: str, customer: str = "c-1", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer,
        "type": kind,
        "occurred_at": "2026-03-01T10:00:00Z",
        **fields,
    }


async def _post(
    client: httpx.AsyncClient, headers: dict[str, str], events: list[dict[str, Any]]
) -> httpx.Response:
    return await client.post("/v1/events", json={"events": events}, headers=headers)


async def _raw(client: httpx.AsyncClient, headers: dict[str, str], body: bytes) -> httpx.Response:
    return await client.post(
        "/v1/events", content=body, headers={**headers, "content-type": "application/json"}
    )


async def _count(session: AsyncSession, sql: str = "SELECT count(*) FROM events") -> int:
    return int((await session.execute(text(sql))).scalar_one())


async def _stored(session: AsyncSession, event_id: str) -> dict[str, Any]:
    row = (
        await session.execute(
            text(
                "SELECT e.type, e.amount, e.currency, e.amount_base, e.margin, e.margin_base,"
                " e.rating, e.channel, e.attributes, e.occurred_at, c.external_id AS customer"
                " FROM events e JOIN customers c ON c.id = e.customer_id WHERE e.event_id = :id"
            ),
            {"id": event_id},
        )
    ).one()
    return dict(row._mapping)


# --- happy paths ----------------------------------------------------------------------------


async def test_every_event_type_is_stored_with_its_fields(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    events = [
        order("o-1", margin="3.50", channel=" webshop ", attributes={"sku": "A-1", "qty": 2}),
        event("r-1", "refund", amount="4.00"),
        event("f-1", "feedback", rating=0, occurred_at="2026-03-01T18:00:00+08:00"),
        event("f-2", "feedback", rating=10),
        event("f-3", "feedback"),
        event("i-1", "inquiry", channel="email"),
        event("x-1", "interaction", attributes={}),
    ]
    response = await _post(client, writer, events)
    assert response.status_code == 200
    assert response.json() == {"accepted": 7, "duplicates": 0}
    first = await _stored(session, "o-1")
    assert first["amount"] == Decimal("10")
    assert (first["currency"], first["channel"], first["attributes"]) == (
        "USD",
        "webshop",
        {"sku": "A-1", "qty": 2},
    )
    assert first["margin_base"] == Decimal("3.5")
    feedback = await _stored(session, "f-1")
    assert (feedback["rating"], feedback["amount"], feedback["currency"]) == (0, None, None)
    assert feedback["occurred_at"].isoformat() == "2026-03-01T10:00:00+00:00"
    assert (await _stored(session, "f-3"))["rating"] is None
    assert (await _stored(session, "x-1"))["attributes"] == {}


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


async def test_a_repeated_id_keeps_the_first_event_of_the_batch(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    events = [order("o-1", amount="1"), order("o-1", amount="2"), order("o-1", amount="3")]
    assert (await _post(client, writer, events)).json() == {"accepted": 1, "duplicates": 2}
    assert (await _stored(session, "o-1"))["amount"] == 1
    # A stored event is never overwritten by a later post of its id.
    assert (await _post(client, writer, [order("o-1", amount="9")])).json()["accepted"] == 0
    assert (await _stored(session, "o-1"))["amount"] == 1


async def test_unknown_customers_are_created_and_known_ones_kept(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    put = await client.put("/v1/customers/c-known", json={"name": "Known"}, headers=writer)
    assert put.status_code == 201
    response = await _post(client, writer, [order("o-1", "c-known"), order("o-2", "c-new")])
    assert response.json() == {"accepted": 2, "duplicates": 0}
    rows = (await session.execute(text("SELECT external_id, name FROM customers"))).all()
    names = {external_id: name for external_id, name in rows}
    assert names == {"c-known": "Known", "c-new": None}
    created = await client.get("/v1/customers/c-new", headers=writer)
    assert created.status_code == 200


async def test_a_full_batch_of_1000_is_accepted(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    events = [order(f"o-{i}", f"c-{i % 37}") for i in range(1000)]
    response = await _post(client, writer, events)
    assert response.json() == {"accepted": 1000, "duplicates": 0}
    assert await _count(session, "SELECT count(*) FROM customers") == 37


# --- money ----------------------------------------------------------------------------------


async def test_money_is_exact_and_converted_with_the_policy_rate(
    client: httpx.AsyncClient,
    writer: dict[str, str],
    admin: dict[str, str],
    session: AsyncSession,
) -> None:
    policy = (await client.get("/v1/policy", headers=admin)).json()
    eur = Decimal(policy["exchange_rates"]["EUR"])
    events = [
        order("o-1", amount="0.1"),
        order("o-2", amount=0.2),
        order("o-3", amount="100", currency="eur", margin="-5.5"),
        order("o-4", amount="0.000001", currency="EUR"),
        order("o-5", amount=" 12.345678 "),
    ]
    assert (await _post(client, writer, events)).status_code == 200
    total = (
        await session.execute(
            text("SELECT sum(amount_base) FROM events WHERE event_id IN ('o-1', 'o-2')")
        )
    ).scalar_one()
    assert total == Decimal("0.3")
    converted = await _stored(session, "o-3")
    assert (converted["amount"], converted["currency"]) == (100, "EUR")
    assert converted["amount_base"] == 100 * eur
    assert converted["margin"] == Decimal("-5.5")
    assert converted["margin_base"] == Decimal("-5.5") * eur
    # Rounded once, to the column's six places, from the exact product.
    tiny = await _stored(session, "o-4")
    assert tiny["amount_base"] == (Decimal("0.000001") * eur).quantize(Decimal("1e-6"))
    assert (await _stored(session, "o-5"))["amount"] == Decimal("12.345678")


async def test_a_rate_added_to_the_policy_is_used(
    client: httpx.AsyncClient,
    writer: dict[str, str],
    admin: dict[str, str],
    session: AsyncSession,
) -> None:
    assert (await _post(client, writer, [order("o-1", currency="ISK")])).status_code == 422
    policy = (await client.get("/v1/policy", headers=admin)).json()
    policy["exchange_rates"]["ISK"] = "0.0072"
    assert (await client.put("/v1/policy", json=policy, headers=admin)).status_code == 200
    response = await _post(client, writer, [order("o-1", amount="1000", currency="ISK")])
    assert response.status_code == 200
    assert (await _stored(session, "o-1"))["amount_base"] == Decimal("7.2")


async def test_currency_without_rate_is_rejected(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    response = await _post(client, writer, [order("a"), order("b", currency="ISK")])
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "events[1].currency",
            "message": "no exchange rate for ISK in the policy (base USD)",
            "index": 1,
        }
    ]
    assert await _count(session) == 0


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        (order("o", occurred_at="2026-03-01T10:00:00"), "occurred_at", "offset"),
        (order("o", occurred_at="2026-03-01"), "occurred_at", "offset"),
        (order("o", occurred_at="2999-03-01T10:00:00Z"), "occurred_at", "future"),
        (order("o", occurred_at="1969-12-31T23:59:59Z"), "occurred_at", "1970"),
        (order("o", occurred_at="2026-02-30T10:00:00Z"), "occurred_at", "calendar"),
        (order("o", occurred_at=1772359200), "occurred_at", "RFC 3339"),
        (order("o", amount="-1"), "amount", "negative"),
        (order("o", amount=-0.01), "amount", "negative"),
        (order("o", amount="NaN"), "amount", "finite"),
        (order("o", amount="Infinity"), "amount", "finite"),
        (order("o", amount="1e999"), "amount", "too large"),
        (order("o", amount="1000000000000000"), "amount", "too large"),
        (order("o", amount="1.0000001"), "amount", "6 decimal places"),
        (order("o", amount="ten"), "amount", "not a decimal"),
        (order("o", amount=True), "amount", "decimal amount"),
        (order("o", amount=None), "amount", "required for order"),
        (event("o", "refund"), "amount", "required for refund"),
        (event("o", "inquiry", amount="1"), "amount", "only allowed on order and refund"),
        (event("o", "feedback", currency="EUR", rating=3), "currency", "only allowed on order"),
        (event("o", "refund", amount="1", margin="1"), "margin", "only allowed on order events"),
        (order("o", margin="1e999"), "margin", "too large"),
        (order("o", currency="XXX1"), "currency", "ISO 4217"),
        (order("o", currency=978), "currency", "ISO 4217"),
        (order("o", type="purchase"), "type", "'order'"),
        (order("o", rating=5), "rating", "only allowed on feedback"),
        (event("o", "feedback", rating=11), "rating", "less than or equal to 10"),
        (event("o", "feedback", rating=-1), "rating", "greater than or equal to 0"),
        (event("o", "feedback", rating=7.5), "rating", "valid integer"),
        (event("o", "feedback", rating=7.0), "rating", "valid integer"),
        (event("o", "feedback", rating=True), "rating", "valid integer"),
        (event("o", "feedback", rating="7"), "rating", "valid integer"),
        (order("o", channel="x" * 65), "channel", "at most 64"),
        (order("o", channel=3), "channel", "valid string"),
        (order("o", attributes=[1]), "attributes", "JSON object"),
        (order("o", attributes={"big": "x" * 17000}), "attributes", "16384 bytes"),
        (order("o", attributes={"nul": "a\u0000b"}), "attributes", "NUL"),
        ({**order("o"), "customer_id": "bad id"}, "customer_id", "pattern"),
        ({**order("o"), "customer_id": "c" * 129}, "customer_id", "pattern"),
        ({**order("o"), "event_id": ""}, "event_id", "pattern"),
        ({**order("o"), "event_id": 42}, "event_id", "valid string"),
        ({**order("o"), "surprise": 1}, "surprise", "Extra inputs"),
    ],
)
async def test_a_bad_item_is_named_and_nothing_is_stored(
    client: httpx.AsyncClient,
    writer: dict[str, str],
    session: AsyncSession,
    item: dict[str, Any],
    field: str,
    message: str,
) -> None:
    response = await _post(client, writer, [order("good-1", "c-good"), item, order("good-2")])
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/validation")
    assert problem["status"] == 422
    [error] = problem["errors"]
    assert error["field"] == f"events[1].{field}"
    assert error["index"] == 1
    assert message in error["message"]
    assert await _count(session) == 0
    assert await _count(session, "SELECT count(*) FROM customers") == 0


@pytest.mark.parametrize("missing", ["event_id", "customer_id", "type", "occurred_at"])
async def test_a_missing_required_field_is_named(
    client: httpx.AsyncClient, writer: dict[str, str], missing: str
) -> None:
    item = order("o")
    del item[missing]
    response = await _post(client, writer, [item])
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": f"events[0].{missing}", "message": "Field required", "index": 0}
    ]


async def test_every_bad_item_is_named(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    events = [
        order("a", amount="-1"),
        order("b"),
        order("c", occurred_at="x"),
        order("d", currency="ISK"),
        event("e", "inquiry", amount="5"),
        order("f"),
        {**order("g"), "event_id": "bad id", "amount": "-2"},
    ]
    response = await _post(client, writer, events)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [
        (0, "events[0].amount"),
        (2, "events[2].occurred_at"),
        (3, "events[3].currency"),
        (4, "events[4].amount"),
        (6, "events[6].event_id"),
        (6, "events[6].amount"),
    ]
    assert response.json()["detail"] == "6 invalid field(s)"
    assert await _count(session) == 0


@pytest.mark.parametrize("size", [0, 1001])
async def test_batch_size_limits(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession, size: int
) -> None:
    response = await _post(client, writer, [order(f"o-{i}") for i in range(size)])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "events"
    assert await _count(session) == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[", 400),
        (b"", 400),
        (b'{"events": [}', 400),
        (b"[]", 422),
        (b'"events"', 422),
        (b"{}", 422),
        (b'{"events": {}}', 422),
        (b'{"events": [], "more": 1}', 422),
        (b'{"events": [1]}', 422),
        (b'{"events": [{"event_id": "\\ud800"}]}', 400),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, writer: dict[str, str], body: bytes, status: int
) -> None:
    response = await _raw(client, writer, body)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert "Traceback" not in response.text


async def test_a_json_number_amount_is_accepted(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    body = b'{"events": [' + orjson.dumps(order("o-1"))[:-1] + b', "margin": 1e2}]}'
    body = body.replace(b'"amount":"10.00"', b'"amount":129.9')
    assert (await _raw(client, writer, body)).status_code == 200
    stored = await _stored(session, "o-1")
    assert (stored["amount"], stored["margin"]) == (Decimal("129.9"), 100)


async def test_an_amount_too_large_in_json_is_rejected(
    client: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    body = orjson.dumps({"events": [order("o-1")]}).replace(b'"10.00"', b"1e999")
    response = await _raw(client, writer, body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "events[0].amount"


async def test_auth_and_media_type(
    client: httpx.AsyncClient, reader: dict[str, str], writer: dict[str, str]
) -> None:
    missing = await _post(client, {}, [order("o")])
    assert (missing.status_code, missing.headers["content-type"]) == (401, PROBLEM)
    wrong = await _post(client, {"Authorization": "Bearer sk_nope"}, [order("o")])
    assert wrong.status_code == 401
    assert (await _post(client, reader, [order("o")])).status_code == 403
    form = await client.post(
        "/v1/events",
        content=b"a=1",
        headers={**writer, "content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415


async def test_an_oversized_body_is_413(client: httpx.AsyncClient, writer: dict[str, str]) -> None:
    events = [order(f"o-{i}", attributes={"pad": "x" * 16000}) for i in range(200)]
    response = await _post(client, writer, events)
    assert response.status_code == 413


# --- concurrency ----------------------------------------------------------------------------


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
    assert revenue == Decimal("555")


async def test_concurrent_batches_in_opposite_orders_do_not_deadlock(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    # Without a fixed lock order, one batch taking ids ascending and another descending
    # would each wait for the other (new customers and new event ids alike).
    forward = [order(f"o-{i:03d}", f"c-{i:03d}") for i in range(200)]
    batches = [forward if n % 2 else forward[::-1] for n in range(12)]
    responses = await asyncio.gather(*(_post(client, writer, b) for b in batches))
    assert [r.status_code for r in responses] == [200] * 12
    assert sum(r.json()["accepted"] for r in responses) == 200
    assert sum(r.json()["duplicates"] for r in responses) == 11 * 200
    assert await _count(session) == 200
    assert await _count(session, "SELECT count(*) FROM customers") == 200


# --- reading a customer's events ------------------------------------------------------------


async def test_customer_events_are_listed_latest_first_with_a_cursor(
    client: httpx.AsyncClient, writer: dict[str, str], reader: dict[str, str]
) -> None:
    events = [
        order("o-old", occurred_at="2026-01-01T00:00:00Z", attributes={"sku": 1}),
        order("o-new", occurred_at="2026-02-01T00:00:00Z", amount="20", currency="EUR"),
        event("f-tie-1", "feedback", rating=9, occurred_at="2026-01-15T00:00:00Z"),
        event("f-tie-2", "feedback", rating=3, occurred_at="2026-01-15T00:00:00Z"),
        order("o-other", "c-2"),
    ]
    await _post(client, writer, events)
    first = await client.get("/v1/customers/c-1/events?limit=2", headers=reader)
    assert first.status_code == 200
    page = first.json()
    assert [e["event_id"] for e in page["items"]] == ["o-new", "f-tie-2"]
    newest = page["items"][0]
    assert (newest["customer_id"], newest["amount"], newest["currency"]) == ("c-1", "20", "EUR")
    assert Decimal(newest["amount_base"]) > 20
    assert newest["received_at"]
    rest = await client.get(
        "/v1/customers/c-1/events", params={"cursor": page["next_cursor"]}, headers=reader
    )
    assert [e["event_id"] for e in rest.json()["items"]] == ["f-tie-1", "o-old"]
    assert rest.json()["items"][1]["attributes"] == {"sku": 1}
    assert rest.json()["next_cursor"] is None


async def test_customer_events_listing_problems(
    client: httpx.AsyncClient, writer: dict[str, str], reader: dict[str, str]
) -> None:
    await _post(client, writer, [order("o-1")])
    assert (await client.get("/v1/customers/nobody/events", headers=reader)).status_code == 404
    assert (await client.get("/v1/customers/c-1/events")).status_code == 401
    for query in ("cursor=garbage", "cursor=eyJhdCI6LTEsImlkIjoxfQ", "limit=0", "limit=1001"):
        response = await client.get(f"/v1/customers/c-1/events?{query}", headers=reader)
        assert response.status_code == 422, query
        assert response.headers["content-type"] == PROBLEM
    known = await client.put("/v1/customers/c-empty", json={}, headers=writer)
    assert known.status_code == 201
    empty = await client.get("/v1/customers/c-empty/events", headers=reader)
    assert empty.json() == {"items": [], "next_cursor": None}


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


# --- operations and documentation -----------------------------------------------------------


async def test_ingest_is_counted_in_metrics(
    client: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    def counted(metrics: str, name: str) -> float:
        line = next(
            (x for x in metrics.splitlines() if x.startswith(f'{name}{{source="api"}}')), None
        )
        return 0.0 if line is None else float(line.split()[-1])

    before = (await client.get("/metrics")).text
    await _post(client, writer, [order("o-1"), order("o-1")])
    after = (await client.get("/metrics")).text
    for name in ("stratum_events_ingested_total", "stratum_events_duplicate_total"):
        assert counted(after, name) - counted(before, name) == 1


async def test_openapi_documents_the_event_endpoints(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    post = paths["/v1/events"]["post"]
    assert post["summary"]
    content = post["requestBody"]["content"]["application/json"]
    assert content["example"]["events"][0]["event_id"]
    items = content["schema"]["properties"]["events"]
    assert (items["minItems"], items["maxItems"]) == (1, 1000)
    assert "amount" in items["items"]["properties"]
    assert {"200", "400", "401", "403", "413", "415", "422"} <= set(post["responses"])
    listing = paths["/v1/customers/{customer_id}/events"]["get"]
    assert {"200", "401", "403", "404", "422"} <= set(listing["responses"])
