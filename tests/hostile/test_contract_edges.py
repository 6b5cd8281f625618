"""Edges of the HTTP contract that a schema-driven client reaches first."""

from __future__ import annotations

import base64

import httpx
import pytest


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/v1/customers/c-1", {"GET", "HEAD", "PUT", "DELETE"}),
        ("PUT", "/v1/jobs", {"GET", "HEAD", "POST"}),
        ("POST", "/v1/jobs/job_1", {"GET", "HEAD", "DELETE"}),
        ("DELETE", "/v1/policy", {"GET", "HEAD", "PUT"}),
        ("PATCH", "/v1/segments", {"GET", "HEAD", "POST"}),
        ("OPTIONS", "/v1/segments/overview", {"GET", "HEAD"}),
        ("PATCH", "/v1/segments/mine", {"GET", "HEAD", "PUT", "DELETE"}),
    ],
)
async def test_a_wrong_method_names_every_method_the_path_serves(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    method: str,
    path: str,
    allowed: set[str],
) -> None:
    response = await client.request(method, path, headers=admin)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


@pytest.mark.parametrize(
    "path",
    [
        "/v1/customers",
        "/v1/jobs",
        "/v1/segments",
        "/v1/classification-changes",
        "/v1/webhook-endpoints",
        "/v1/customers/edge-0/events",
    ],
)
async def test_an_empty_cursor_is_the_first_page(
    client: httpx.AsyncClient, admin: dict[str, str], path: str
) -> None:
    await client.put("/v1/customers/edge-0", json={}, headers=admin)
    first = await client.get(path, headers=admin)
    empty = await client.get(path, params={"cursor": ""}, headers=admin)
    assert empty.status_code == first.status_code == 200
    assert empty.json() == first.json()
    broken = await client.get(path, params={"cursor": "not a cursor"}, headers=admin)
    assert broken.status_code == 422


@pytest.mark.parametrize("value", ["", "   ", "\t"])
async def test_a_blank_filter_is_no_filter(
    client: httpx.AsyncClient, admin: dict[str, str], value: str
) -> None:
    await client.put("/v1/customers/edge-1", json={"industry": "machinery"}, headers=admin)
    response = await client.get("/v1/customers", params={"industry": value}, headers=admin)
    assert response.status_code == 200
    assert "edge-1" in {c["customer_id"] for c in response.json()["items"]}
    too_long = await client.get("/v1/customers", params={"industry": "a" * 129}, headers=admin)
    assert too_long.status_code == 422


@pytest.mark.parametrize("path", ["/v1/classification-changes", "/v1/customers/edge-0/events"])
async def test_a_time_cursor_from_another_list_or_tampered_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], path: str
) -> None:
    await client.put("/v1/customers/edge-0", json={}, headers=admin)
    for payload in (
        b'{"after": 3}',
        b'{"at": 1.5, "id": 1}',
        b'{"at": 1, "id": true}',
        b'{"at": 99999999999999999999, "id": 1}',
        b'{"at": 1, "id": -1}',
    ):
        cursor = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        response = await client.get(path, params={"cursor": cursor}, headers=admin)
        assert response.status_code == 422, payload
