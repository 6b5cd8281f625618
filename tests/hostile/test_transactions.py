"""The request's session dependency owns the transaction: one commit before the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.hostile.support import PROBLEM, fingerprint, order, signed


class _CommitFails(Exception):
    pass


@pytest.fixture
async def plain(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the 500 answer, as a real one would, not the re-raised error."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://stratum.test") as c:
        yield c


async def _count(session: AsyncSession, table: str) -> int:
    value = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    await session.rollback()
    return int(value)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PUT", "/v1/customers/c-1", {"name": "Acme"}),
        ("POST", "/v1/events", {"events": [order()]}),
        (
            "POST",
            "/v1/segments",
            {"key": "s", "name": "S", "rule": {"field": "tier", "op": "exists"}},
        ),
        ("DELETE", "/v1/customers/c-0", None),
    ],
)
async def test_a_failed_commit_is_an_error_answer_and_stores_nothing(
    client: httpx.AsyncClient,
    plain: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    url: str,
    body: dict[str, Any] | None,
) -> None:
    assert (await client.put("/v1/customers/c-0", json={}, headers=admin)).status_code == 201
    before = await fingerprint(session)

    async def commit(self: AsyncSession) -> None:
        raise _CommitFails

    with monkeypatch.context() as patch:
        patch.setattr(AsyncSession, "commit", commit)
        response = await plain.request(method, url, json=body, headers=admin)
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "Traceback" not in response.text
    assert await fingerprint(session) == before


async def test_a_webhook_answers_2xx_only_after_its_commit(
    client: httpx.AsyncClient,
    plain: httpx.AsyncClient,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body, headers = signed(order(customer={"name": "Acme"}), msg_id="msg_c")

    async def commit(self: AsyncSession) -> None:
        raise _CommitFails

    with monkeypatch.context() as patch:
        patch.setattr(AsyncSession, "commit", commit)
        failed = await plain.post("/v1/webhooks/orders", content=body, headers=headers)
    assert failed.status_code == 500
    for table in ("events", "customers", "webhook_deliveries", "policies"):
        assert await _count(session, table) == 0, table
    # Nothing was recorded, so the sender's retry is a first delivery, not a duplicate.
    retried = await client.post("/v1/webhooks/orders", content=body, headers=headers)
    assert retried.json() == {"accepted": 1, "duplicates": 0}
    name = await session.execute(text("SELECT name FROM customers"))
    assert name.scalar_one() == "Acme"


async def test_a_rejected_webhook_leaves_no_customer_behind(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    # Valid shape, but a currency without a rate: rejected after the customer is known.
    body, headers = signed(order(currency="XAF", customer={"name": "Acme"}), msg_id="msg_r")
    response = await client.post("/v1/webhooks/orders", content=body, headers=headers)
    assert response.status_code == 422
    for table in ("events", "customers", "webhook_deliveries", "policies"):
        assert await _count(session, table) == 0, table


async def test_a_rejected_request_does_not_even_keep_the_first_policy(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    response = await client.post("/v1/events", json={"events": [order(amount="-1")]}, headers=admin)
    assert response.status_code == 422
    assert await _count(session, "policies") == 0
    assert await _count(session, "customers") == 0


async def test_a_segment_key_conflict_is_409_and_keeps_the_first(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = {"key": "s", "name": "First", "rule": {"field": "tier", "op": "exists"}}
    assert (await client.post("/v1/segments", json=first, headers=admin)).status_code == 201
    second = {**first, "name": "Second"}
    conflict = await client.post("/v1/segments", json=second, headers=admin)
    assert conflict.status_code == 409
    assert (await client.get("/v1/segments/s", headers=admin)).json()["name"] == "First"
