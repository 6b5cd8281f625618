"""What a caller can send wrong is a 4xx naming the field, and stores nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import Settings
from app.main import create_app
from tests.hostile.support import PROBLEM, fingerprint, order, raw_json, signed

EDGE_TIMES = ["9999-12-31T23:30:00-01:00", "0001-01-01T00:30:00+01:00"]


def _fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == PROBLEM, response.text
    return [e["field"] for e in response.json().get("errors", [])]


@pytest.mark.parametrize("moment", EDGE_TIMES)
async def test_calendar_edge_times_are_422_everywhere(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession, moment: str
) -> None:
    await client.put("/v1/customers/c-1", json={}, headers=admin)
    before = await fingerprint(session)
    posted = await client.post(
        "/v1/events", json={"events": [order(occurred_at=moment)]}, headers=admin
    )
    assert posted.status_code == 422
    assert _fields(posted) == ["events[0].occurred_at"]
    put = await client.put("/v1/customers/c-1", json={"created_at": moment}, headers=admin)
    assert put.status_code == 422
    assert _fields(put) == ["created_at"]
    read = await client.get(
        "/v1/customers/c-1/classification", params={"as_of": moment}, headers=admin
    )
    assert read.status_code == 422
    assert _fields(read) == ["query.as_of"]
    batch = await client.post(
        "/v1/classifications/batch", json={"customer_ids": ["c-1"], "as_of": moment}, headers=admin
    )
    assert batch.status_code == 422
    rule = {"field": "created_at", "op": "gt", "value": moment}
    segment = await client.post(
        "/v1/segments", json={"key": "s", "name": "S", "rule": rule}, headers=admin
    )
    assert segment.status_code == 422
    assert _fields(segment) == ["rule.value"]
    body, headers = signed(order(occurred_at=moment))
    hook = await client.post("/v1/webhooks/orders", content=body, headers=headers)
    assert hook.status_code == 422
    assert _fields(hook) == ["occurred_at"]
    assert await fingerprint(session) == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Wang\x00Fang", "NUL"),
        ("Wang\ud800Fang", "surrogate"),
        ("Wang\x1bFang", "control"),
        ("Wang\x7fFang", "control"),
    ],
)
async def test_text_that_cannot_be_stored_is_named(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    value: str,
    message: str,
) -> None:
    before = await fingerprint(session)
    headers = {**admin, "content-type": "application/json"}
    # raw_json sends a lone surrogate as the escape \ud800, as a hostile sender would.
    put = await client.put("/v1/customers/c-1", content=raw_json({"name": value}), headers=headers)
    assert put.status_code == 422
    assert _fields(put) == ["name"]
    assert message in put.json()["errors"][0]["message"]
    rule = {"field": "country", "op": "eq", "value": "DE"}
    segment = await client.post(
        "/v1/segments", content=raw_json({"key": "s", "name": value, "rule": rule}), headers=headers
    )
    assert segment.status_code == 422
    assert _fields(segment) == ["name"]
    posted = await client.post(
        "/v1/events", content=raw_json({"events": [order(channel=value)]}), headers=headers
    )
    assert posted.status_code in (400, 422)
    assert await fingerprint(session) == before


async def test_text_in_query_and_path_parameters(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for url in (
        "/v1/customers?industry=a%00b",
        "/v1/segments/a%00b",
        "/v1/segments/a%00b/customers",
        "/v1/customers?cursor=%00%ff",
        "/v1/customers/c-1/events?cursor=%C3%A9%00",
    ):
        response = await client.get(url, headers=admin)
        assert response.status_code in (404, 422), (url, response.text)
        assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "raw",
    [
        b'{"x": NaN}',
        b'{"x": Infinity}',
        b'{"x": -Infinity}',
        b'{"x": 1e999}',
        b'{"x": 1e300}',
        b'{"x": [1, {"y": 123456789012345678901234567890}]}',
        b'{"x": "a\\u0000b"}',
        b'{"x\\u0000": 1}',
        b'{"x": "\\udc00"}',
        b'{"a":' * 40 + b"1" + b"}" * 40,
    ],
)
async def test_json_numbers_and_text_inside_attributes(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession, raw: bytes
) -> None:
    before = await fingerprint(session)
    headers = {**admin, "content-type": "application/json"}
    put = await client.put(
        "/v1/customers/c-1", content=b'{"attributes": ' + raw + b"}", headers=headers
    )
    assert put.status_code == 422, put.text
    assert _fields(put) == ["attributes"]
    event = orderless = b'{"events": [{"event_id": "e-1", "customer_id": "c-1", "type": "inquiry",'
    event = orderless + b' "occurred_at": "2026-03-01T10:00:00Z", "attributes": ' + raw + b"}]}"
    posted = await client.post("/v1/events", content=event, headers=headers)
    assert posted.status_code in (400, 422), posted.text
    if posted.status_code == 422:
        assert _fields(posted) == ["events[0].attributes"]
    assert await fingerprint(session) == before


async def test_attributes_that_are_stored_come_back_unchanged(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    attributes: dict[str, Any] = {
        "small": 1e-300,
        "float": 0.30000000000000004,
        "big": 999999999999999.9,
        "int": -(2**63),
        "text": "多行\ttext\nwith 😀",
        "nested": {"list": [True, None, {"deep": [1.5]}]},
    }
    put = await client.put("/v1/customers/c-1", json={"attributes": attributes}, headers=admin)
    assert put.status_code == 201
    got = await client.get("/v1/customers/c-1", headers=admin)
    assert got.json()["attributes"] == attributes


async def _seed_typed(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for cid, attributes in (
        ("a", {"vip": True, "seats": 40}),
        ("b", {"vip": "yes", "seats": "many"}),
        ("c", {"vip": False, "seats": 2.5}),
        ("d", {}),
    ):
        assert (
            await client.put(
                f"/v1/customers/{cid}", json={"attributes": attributes}, headers=headers
            )
        ).status_code == 201


@pytest.mark.parametrize(
    ("rule", "members"),
    [
        ({"field": "attributes.vip", "op": "eq", "value": True}, ["a"]),
        ({"field": "attributes.vip", "op": "ne", "value": True}, ["c"]),
        ({"field": "attributes.vip", "op": "eq", "value": "yes"}, ["b"]),
        ({"field": "attributes.seats", "op": "gt", "value": 5}, ["a"]),
        ({"field": "attributes.seats", "op": "lte", "value": 5}, ["c"]),
        ({"field": "attributes.seats", "op": "in", "value": [40, 2.5]}, ["a", "c"]),
        ({"not": {"field": "attributes.seats", "op": "gt", "value": 5}}, ["c"]),
        ({"field": "attributes.seats", "op": "exists"}, ["a", "b", "c"]),
    ],
)
async def test_rules_over_attributes_held_with_mixed_types(
    client: httpx.AsyncClient, admin: dict[str, str], rule: dict[str, Any], members: list[str]
) -> None:
    await _seed_typed(client, admin)
    created = await client.post(
        "/v1/segments", json={"key": "s", "name": "S", "rule": rule}, headers=admin
    )
    assert created.status_code == 201, created.text
    listed = await client.get("/v1/segments/s/customers", headers=admin)
    assert listed.status_code == 200, listed.text
    assert [c["customer_id"] for c in listed.json()["items"]] == members


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"field": "attributes.vip", "op": "gt", "value": True}, "rule.value"),
        ({"field": "tier_score", "op": "eq", "value": True}, "rule.value"),
        ({"field": "orders", "op": "gt", "value": 1e14 * 100}, "rule"),
        ({"field": "orders", "op": "gt", "value": 1e300}, "rule"),
        ({"field": "orders", "op": "gt", "value": 10**30}, "rule"),
        ({"field": "attributes.seats", "op": "in", "value": [1, "x"]}, "rule.value"),
        ({"field": "country", "op": "eq", "value": "D\ud800"}, "rule"),
        ({"field": "country", "op": "eq", "value": "D\x07"}, "rule"),
    ],
)
async def test_rules_that_could_fail_at_query_time_are_422_when_defined(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    rule: dict[str, Any],
    field: str,
) -> None:
    await _seed_typed(client, admin)
    before = await fingerprint(session)
    created = await client.post(
        "/v1/segments",
        content=raw_json({"key": "s", "name": "S", "rule": rule}),
        headers={**admin, "content-type": "application/json"},
    )
    assert created.status_code == 422, created.text
    assert _fields(created) == [field]
    assert await fingerprint(session) == before


async def test_a_nan_inside_a_rule_is_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = b'{"key": "s", "name": "S", "rule": {"field": "orders", "op": "gt", "value": NaN}}'
    response = await client.post(
        "/v1/segments", content=body, headers={**admin, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert _fields(response) == ["rule"]


async def test_policy_text_and_cutoffs_are_checked(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    policy = (await client.get("/v1/policy", headers=admin)).json()
    before = await fingerprint(session)
    bad_label = {**policy, "strategies": [dict(policy["strategies"][0]), *policy["strategies"][1:]]}
    bad_label["strategies"][0]["label"] = {"en": "Call\ud800"}
    response = await client.put(
        "/v1/policy",
        content=raw_json(bad_label),
        headers={**admin, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert _fields(response) == ["strategies[0].label.en"]
    huge = {**policy, "tiers": {**policy["tiers"], "method": "absolute", "high": "1e999999"}}
    response = await client.put("/v1/policy", json=huge, headers=admin)
    assert response.status_code == 422
    assert await fingerprint(session) == before


async def test_a_rate_that_would_overflow_stored_amounts_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    policy = (await client.get("/v1/policy", headers=admin)).json()
    policy["exchange_rates"] = {"EUR": "1"}
    assert (await client.put("/v1/policy", json=policy, headers=admin)).status_code == 200
    big = order(amount="900000000000000", currency="EUR")
    assert (
        await client.post("/v1/events", json={"events": [big]}, headers=admin)
    ).status_code == 200
    before = await fingerprint(session)
    policy["exchange_rates"] = {"EUR": "5000"}
    response = await client.put("/v1/policy", json=policy, headers=admin)
    assert response.status_code == 422
    assert _fields(response) == ["exchange_rates.EUR"]
    assert await fingerprint(session) == before
    overflow = order("o-2", amount="900000000000000", currency="EUR")
    await client.delete("/v1/customers/c-1", headers=admin)
    policy["exchange_rates"] = {"EUR": "2000"}
    assert (await client.put("/v1/policy", json=policy, headers=admin)).status_code == 200
    response = await client.post("/v1/events", json={"events": [overflow]}, headers=admin)
    assert response.status_code == 422
    assert _fields(response) == ["events[0].amount"]


@pytest.mark.parametrize("stamp", [b"17000000\xb2", b"\xb9\xb2\xb3", b"1" * 40])
async def test_a_malformed_webhook_timestamp_is_401_before_anything_else(
    database_url: str, stamp: bytes
) -> None:
    # No secret configured at all: the header is refused before the configuration is read.
    settings = Settings(database_url=database_url, log_level="WARNING", warm_models=False)
    app = create_app(settings, database_url=database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            headers = [
                (b"content-type", b"application/json"),
                (b"webhook-id", b"msg_1"),
                (b"webhook-timestamp", stamp),
                (b"webhook-signature", b"v1,AAAA"),
            ]
            response = await c.post("/v1/webhooks/orders", content=b"{}", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


async def test_nothing_personal_or_a_traceback_is_logged_for_bad_input(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level("INFO")
    await client.put("/v1/customers/c-1", json={"email": "wang.fang@example.cn\x00"}, headers=admin)
    await client.post(
        "/v1/events", json={"events": [order(occurred_at=EDGE_TIMES[0])]}, headers=admin
    )
    logged = caplog.text + "".join(capsys.readouterr())
    assert "wang.fang" not in logged
    assert "Traceback" not in logged
    count = await client.get("/v1/customers", headers=admin)
    assert count.status_code == 200


async def test_every_table_is_fingerprinted(session: AsyncSession) -> None:
    # The fingerprint covers the erasure list too, so a 4xx that remembered one would show.
    names = {
        r[0]
        for r in await session.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
    }
    from tests.hostile.support import TABLES

    assert names - {"alembic_version"} <= set(TABLES)
