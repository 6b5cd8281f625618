from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import Settings
from app.customers.schemas import CustomerUpsert
from app.main import create_app
from app.webhooks import repository as webhook_repository
from tests.conftest import WEBHOOK_SECRET

URL = "/v1/webhooks/orders"
PROBLEM = "application/problem+json"
OTHER_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def _order(event_id: str = "o-1", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": "c-1",
        "type": "order",
        "occurred_at": "2026-03-01T10:00:00Z",
        "amount": "129.90",
        **fields,
    }


def _signature(secret: str, msg_id: str, stamp: int, body: bytes) -> str:
    # By hand rather than Webhook.sign: a timestamp in milliseconds is past datetime's range.
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _signed(
    payload: dict[str, Any] | bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    msg_id: str = "msg_1",
    at: float | None = None,
    extra_signatures: str = "",
) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    stamp = int(at if at is not None else time.time())
    signature = _signature(secret, msg_id, stamp, body)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": f"{extra_signatures} {signature}".strip(),
    }
    return body, headers


async def _deliver(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(URL, content=body, headers=headers)


async def _count(session: AsyncSession, table: str = "events") -> int:
    return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


@asynccontextmanager
async def _client_for(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A separate app with its own settings (webhook secrets, tolerance)."""
    configured = Settings(
        database_url=database_url,
        log_level="WARNING",
        log_json=False,
        warm_models=False,
        **settings,
    )
    application = create_app(configured, database_url=database_url)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


# --- deliveries that are stored -------------------------------------------------------------


async def test_a_valid_delivery_is_stored_once_with_its_customer(
    client: httpx.AsyncClient, session: AsyncSession, admin: dict[str, str]
) -> None:
    customer = {"name": " Acme ", "country": "de", "email": "Buyer@Acme.example"}
    body, headers = _signed(_order(currency="EUR", customer=customer))
    first = await _deliver(client, body, headers)
    assert first.status_code == 200
    assert first.json() == {"accepted": 1, "duplicates": 0}
    stored = (
        await session.execute(
            text(
                "SELECT e.amount, e.currency, e.amount_base, c.name, c.country, c.email"
                " FROM events e JOIN customers c ON c.id = e.customer_id"
            )
        )
    ).one()
    eur = Decimal((await client.get("/v1/policy", headers=admin)).json()["exchange_rates"]["EUR"])
    assert tuple(stored) == (
        Decimal("129.90"),
        "EUR",
        Decimal("129.90") * eur,
        "Acme",
        "DE",
        "buyer@acme.example",
    )
    delivery = (
        await session.execute(text("SELECT webhook_id, event_id FROM webhook_deliveries"))
    ).one()
    assert tuple(delivery) == ("msg_1", "o-1")


async def test_a_refund_without_customer_creates_a_bare_customer(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    body, headers = _signed(_order("r-1", type="refund", customer_id="c-new"))
    assert (await _deliver(client, body, headers)).json() == {"accepted": 1, "duplicates": 0}
    row = (await session.execute(text("SELECT external_id, name FROM customers"))).one()
    assert tuple(row) == ("c-new", None)


async def test_redelivery_and_the_same_order_under_a_new_id_count_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    body, headers = _signed(_order(customer={"name": "Acme"}))
    assert (await _deliver(client, body, headers)).json() == {"accepted": 1, "duplicates": 0}
    again = await _deliver(client, body, headers)
    assert (again.status_code, again.json()) == (200, {"accepted": 0, "duplicates": 1})
    # The same order from another delivery: acknowledged, and its (maybe older) customer
    # fields are not applied.
    body2, headers2 = _signed(_order(customer={"name": "Stale name"}), msg_id="msg_2")
    same_order = await _deliver(client, body2, headers2)
    assert same_order.json() == {"accepted": 0, "duplicates": 1}
    assert await _count(session) == 1
    assert await _count(session, "webhook_deliveries") == 2
    name = (await session.execute(text("SELECT name FROM customers"))).scalar_one()
    assert name == "Acme"


async def test_a_new_order_updates_only_the_customer_fields_it_names(
    client: httpx.AsyncClient, session: AsyncSession, writer: dict[str, str]
) -> None:
    put = {"name": "Acme", "industry": "machinery", "attributes": {"crm": 1}}
    assert (await client.put("/v1/customers/c-1", json=put, headers=writer)).status_code == 201
    body, headers = _signed(_order(customer={"country": "FR", "attributes": None}))
    assert (await _deliver(client, body, headers)).status_code == 200
    customer = (await client.get("/v1/customers/c-1", headers=writer)).json()
    assert (customer["name"], customer["industry"], customer["country"]) == (
        "Acme",
        "machinery",
        "FR",
    )
    assert customer["attributes"] == {}


async def test_a_new_customer_gets_every_field_of_the_delivery(
    client: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    fields = {
        "name": "Acme GmbH",
        "email": "Buyer@Acme.example",
        "phone": "+49 30 1234 567",
        "country": "de",
        "customer_type": "business",
        "role": "distributor",
        "industry": "machinery",
        "company_size": "medium",
        "created_at": "2025-01-02T03:04:05+01:00",
        "attributes": {"crm_owner": "li.wei", "n": [1, 2]},
    }
    body, headers = _signed(_order(customer_id="c-full", customer=fields))
    assert (await _deliver(client, body, headers)).json() == {"accepted": 1, "duplicates": 0}
    stored = (await client.get("/v1/customers/c-full", headers=writer)).json()
    assert {k: stored[k] for k in fields} == {
        **fields,
        "email": "buyer@acme.example",
        "phone": "+49301234567",
        "country": "DE",
        "created_at": "2025-01-02T02:04:05Z",
    }


async def test_concurrent_redeliveries_store_one_event(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    same_id = _signed(_order(customer={"name": "Acme"}))
    other_ids = [_signed(_order(), msg_id=f"msg_{n}") for n in range(2, 6)]
    deliveries = [same_id] * 5 + other_ids
    responses = await asyncio.gather(*(_deliver(client, *d) for d in deliveries))
    assert [r.status_code for r in responses] == [200] * len(deliveries)
    assert sum(r.json()["accepted"] for r in responses) == 1
    assert sum(r.json()["duplicates"] for r in responses) == len(deliveries) - 1
    assert await _count(session) == 1
    assert await _count(session, "webhook_deliveries") == 5


async def test_no_api_key_is_needed(client: httpx.AsyncClient) -> None:
    body, headers = _signed(_order())
    response = await _deliver(client, body, {**headers, "Authorization": "Bearer sk_unknown"})
    assert response.status_code == 200


# --- signatures -----------------------------------------------------------------------------


def _tamper(case: str) -> tuple[bytes, dict[str, str]]:
    body, headers = _signed(_order())
    now = time.time()
    if case == "wrong_secret":
        return _signed(_order(), secret=OTHER_SECRET)
    if case == "tampered_body":
        return body.replace(b"129.90", b"1.00"), headers
    if case == "tampered_id":
        return body, {**headers, "webhook-id": "msg_other"}
    if case == "tampered_timestamp":
        return body, {**headers, "webhook-timestamp": str(int(now) - 1)}
    if case == "stale":
        return _signed(_order(), at=now - 301)
    if case == "future":
        return _signed(_order(), at=now + 301)
    if case.startswith("missing_"):
        del headers[case.removeprefix("missing_")]
        return body, headers
    if case == "empty_id":
        return body, {**headers, "webhook-id": ""}
    if case == "long_id":
        return _signed(_order(), msg_id="m" * 257)
    if case == "timestamp_not_a_number":
        return body, {**headers, "webhook-timestamp": "soon"}
    if case == "timestamp_in_ms":
        return _signed(_order(), at=now * 1000)
    if case == "garbage_signature":
        return body, {**headers, "webhook-signature": "v1,@@@ v2 ,,, v1,"}
    if case == "unversioned_signature":
        return body, {**headers, "webhook-signature": headers["webhook-signature"][3:]}
    if case == "other_version":
        return body, {**headers, "webhook-signature": "v1a" + headers["webhook-signature"][2:]}
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "wrong_secret",
        "tampered_body",
        "tampered_id",
        "tampered_timestamp",
        "stale",
        "future",
        "missing_webhook-id",
        "missing_webhook-timestamp",
        "missing_webhook-signature",
        "empty_id",
        "long_id",
        "timestamp_not_a_number",
        "timestamp_in_ms",
        "garbage_signature",
        "unversioned_signature",
        "other_version",
    ],
)
async def test_bad_signatures_are_401_and_store_nothing(
    client: httpx.AsyncClient, session: AsyncSession, case: str
) -> None:
    response = await _deliver(client, *_tamper(case))
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"].startswith("Webhook signature rejected")
    assert WEBHOOK_SECRET not in response.text
    assert await _count(session) == 0
    assert await _count(session, "webhook_deliveries") == 0
    assert await _count(session, "customers") == 0


async def test_a_timestamp_just_inside_the_tolerance_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    old = _signed(_order("o-old"), msg_id="m-old", at=time.time() - 290)
    new = _signed(_order("o-new"), msg_id="m-new", at=time.time() + 290)
    assert (await _deliver(client, *old)).status_code == 200
    assert (await _deliver(client, *new)).status_code == 200


async def test_the_tolerance_setting_is_honoured(database_url: str) -> None:
    ten_minutes_ago = time.time() - 600
    async with _client_for(
        database_url, webhook_secret=WEBHOOK_SECRET, webhook_tolerance_seconds=900
    ) as lenient:
        accepted = await _deliver(lenient, *_signed(_order("o-1"), at=ten_minutes_ago))
        assert accepted.status_code == 200
    async with _client_for(
        database_url, webhook_secret=WEBHOOK_SECRET, webhook_tolerance_seconds=30
    ) as strict:
        stale = await _deliver(strict, *_signed(_order("o-2"), at=time.time() - 60))
        assert stale.status_code == 401


async def test_several_signatures_in_one_header(client: httpx.AsyncClient) -> None:
    garbage = "v1,bm90IGEgc2lnbmF0dXJl"
    old_key = _signed(_order("o-1"), secret=OTHER_SECRET)[1]["webhook-signature"]
    body, headers = _signed(_order("o-1"), extra_signatures=f"{garbage} {old_key}")
    assert (await _deliver(client, body, headers)).status_code == 200
    # The valid signature first, others after it.
    body, headers = _signed(_order("o-2"), msg_id="msg_2")
    headers["webhook-signature"] += f" {garbage} v2,whatever"
    assert (await _deliver(client, body, headers)).status_code == 200


async def test_a_signature_made_with_hmac_per_the_spec_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    body = orjson.dumps(_order())
    stamp = str(int(time.time()))
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, b"msg_hmac." + stamp.encode() + b"." + body, hashlib.sha256).digest()
    headers = {
        "content-type": "application/json",
        "webhook-id": "msg_hmac",
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    assert (await _deliver(client, body, headers)).status_code == 200


async def test_a_rotated_secret_accepts_old_and_new(
    database_url: str, session: AsyncSession
) -> None:
    async with _client_for(
        database_url, webhook_secret=f"  {OTHER_SECRET}   {WEBHOOK_SECRET} "
    ) as rotating:
        old = _signed(_order("o-old"), msg_id="m-old")
        new = _signed(_order("o-new"), secret=OTHER_SECRET, msg_id="m-new")
        assert (await _deliver(rotating, *old)).status_code == 200
        assert (await _deliver(rotating, *new)).status_code == 200
        # A sender mid-rotation signs with both keys.
        both = _signed(_order("o-both"), msg_id="m-both")
        both[1]["webhook-signature"] = (
            _signed(_order("o-both"), secret=OTHER_SECRET, msg_id="m-both")[1]["webhook-signature"]
            + " "
            + both[1]["webhook-signature"]
        )
        assert (await _deliver(rotating, *both)).status_code == 200
        third = "whsec_" + base64.b64encode(b"k" * 24).decode()
        unknown = _signed(_order("o-x"), secret=third, msg_id="m-x")
        assert (await _deliver(rotating, *unknown)).status_code == 401
    assert await _count(session) == 3


@pytest.mark.parametrize("secret", [None, "", "   "])
async def test_unconfigured_webhooks_are_503(
    database_url: str, session: AsyncSession, secret: str | None
) -> None:
    async with _client_for(database_url, webhook_secret=secret) as unconfigured:
        response = await _deliver(unconfigured, *_signed(_order()))
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert "not configured" in response.json()["detail"]
    assert await _count(session) == 0


async def test_a_malformed_secret_is_503_without_revealing_it(database_url: str) -> None:
    async with _client_for(database_url, webhook_secret="whsec_a") as misconfigured:
        response = await _deliver(misconfigured, *_signed(_order()))
    assert response.status_code == 503
    assert "misconfigured" in response.json()["detail"]
    assert "whsec_a" not in response.text.replace("whsec_ secret", "")


# --- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({**_order(), "type": "inquiry"}, 422, "type"),
        ({**_order(), "type": "feedback", "rating": 5}, 422, "type"),
        (_order(amount="-3"), 422, "amount"),
        (_order(amount=None), 422, "amount"),
        (_order(currency="ISK"), 422, "currency"),
        (_order(occurred_at="2026-03-01T10:00:00"), 422, "occurred_at"),
        (_order(customer={"email": "not-an-email"}), 422, "customer.email"),
        (_order(customer={"surprise": 1}), 422, "customer.surprise"),
        (_order(customer="Acme"), 422, "customer"),
        ({**_order(), "unknown": 1}, 422, "unknown"),
        ([_order()], 422, "body"),
        (b"{nope", 400, None),
        (b"", 400, None),
    ],
)
async def test_an_invalid_order_after_a_valid_signature(
    client: httpx.AsyncClient,
    session: AsyncSession,
    payload: Any,
    status: int,
    field: str | None,
) -> None:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    response = await _deliver(client, *_signed(body))
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    if field is not None:
        assert response.json()["errors"][0]["field"] == field
        assert "index" not in response.json()["errors"][0]
    assert await _count(session) == 0
    assert await _count(session, "webhook_deliveries") == 0
    assert await _count(session, "customers") == 0


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"currency": "XAF"}, "currency", "no exchange rate for XAF in the policy (base USD)"),
        ({"currency": "EUR", "amount": "999999999999999"}, "amount", "is too large once"),
    ],
)
async def test_an_order_the_policy_cannot_convert_is_422_naming_the_field(
    client: httpx.AsyncClient,
    session: AsyncSession,
    admin: dict[str, str],
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    policy = (await client.get("/v1/policy", headers=admin)).json()
    document = {k: v for k, v in policy.items() if k not in ("version", "created_at")}
    document["exchange_rates"] = {**document["exchange_rates"], "EUR": "10000"}
    assert (await client.put("/v1/policy", json=document, headers=admin)).status_code == 200
    response = await _deliver(client, *_signed(_order(customer={"name": "Acme"}, **fields)))
    assert response.status_code == 422
    assert response.json()["detail"] == "1 invalid field(s)"
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert error["message"].startswith(message)
    for table in ("events", "webhook_deliveries", "customers"):
        assert await _count(session, table) == 0, table


def test_a_delivery_can_set_every_customer_field() -> None:
    assert set(CustomerUpsert.model_fields) == set(webhook_repository.CUSTOMER_COLUMNS)


async def test_a_rejected_delivery_can_be_sent_again_once_fixed(
    client: httpx.AsyncClient,
) -> None:
    bad = _signed(_order(amount="-3"), msg_id="msg_fix")
    assert (await _deliver(client, *bad)).status_code == 422
    fixed = _signed(_order(), msg_id="msg_fix")
    assert (await _deliver(client, *fixed)).json() == {"accepted": 1, "duplicates": 0}


async def test_the_webhook_is_documented(client: httpx.AsyncClient) -> None:
    post = (await client.get("/openapi.json")).json()["paths"][URL]["post"]
    assert "security" not in post
    content = post["requestBody"]["content"]["application/json"]
    assert content["schema"]["properties"]["type"]["enum"] == ["order", "refund"]
    assert "email" in str(content["schema"]["properties"]["customer"])
    assert content["example"]["customer"]
    assert {"200", "400", "401", "413", "415", "422", "503"} <= set(post["responses"])
