"""A key without `read` cannot read personal data through any endpoint."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import _key
from tests.hostile.support import order

PERSONAL = {"name": "Wang Fang", "email": "wang.fang@example.cn", "phone": "+86 10 1234 5678"}
SECRETS = ("Wang Fang", "wang.fang", "+861012345678", "secret-attr")
PARAMS = {"customer_id": "c-pii", "key": "seg"}
BODIES: dict[tuple[str, str], object] = {
    ("PUT", "/v1/customers/{customer_id}"): {},
    ("POST", "/v1/events"): {"events": [order("o-2", "c-pii")]},
    ("POST", "/v1/segments"): {
        "key": "seg2",
        "name": "S",
        "rule": {"field": "tier", "op": "exists"},
    },
    ("PUT", "/v1/segments/{key}"): {
        "name": "S",
        "rule": {"field": "country", "op": "eq", "value": "CN"},
    },
    ("POST", "/v1/classifications/batch"): {"customer_ids": ["c-pii"]},
}


def _calls(app: FastAPI) -> list[tuple[str, str, str]]:
    """Every documented /v1 operation, with its path parameters filled in."""
    calls = []
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/v1/"):
            continue
        url = re.sub(r"{(\w+)}", lambda m: PARAMS[m.group(1)], path)
        calls += [(method.upper(), path, url) for method in sorted(operations)]
    return calls


@pytest.mark.parametrize("scopes", [["write"], ["admin"], ["write", "admin"]])
async def test_no_endpoint_shows_personal_data_without_read(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    scopes: list[str],
) -> None:
    body = {**PERSONAL, "country": "CN", "attributes": {"note": "secret-attr"}}
    assert (await client.put("/v1/customers/c-pii", json=body, headers=admin)).status_code == 201
    await client.post("/v1/events", json={"events": [order("o-1", "c-pii")]}, headers=admin)
    segment = {"key": "seg", "name": "S", "rule": {"field": "country", "op": "eq", "value": "CN"}}
    assert (await client.post("/v1/segments", json=segment, headers=admin)).status_code == 201
    headers = await _key(session, scopes)
    calls = _calls(app)
    assert len(calls) >= 12
    for method, path, url in calls:
        if method == "DELETE":
            continue  # erasing is allowed with write; it shows nothing (204)
        response = await client.request(
            method, url, json=BODIES.get((method, path)), headers=headers
        )
        assert response.status_code < 500, (method, url, response.text)
        for secret in SECRETS:
            assert secret not in response.text, (method, url, scopes, response.text)


async def test_a_write_only_put_answers_without_the_stored_fields(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    await client.put("/v1/customers/c-pii", json=PERSONAL, headers=admin)
    writer = await _key(session, ["write"])
    updated = await client.put("/v1/customers/c-pii", json={}, headers=writer)
    assert updated.status_code == 200
    assert updated.content == b""
    created = await client.put("/v1/customers/c-new", json=PERSONAL, headers=writer)
    assert created.status_code == 201
    assert created.content == b""
    reader_writer = await _key(session, ["read", "write"])
    shown = await client.put("/v1/customers/c-pii", json={}, headers=reader_writer)
    assert shown.json()["email"] == "wang.fang@example.cn"
