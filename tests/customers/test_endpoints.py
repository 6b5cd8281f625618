from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

PROBLEM = "application/problem+json"


async def test_put_creates_then_updates(client: httpx.AsyncClient, writer: dict[str, str]) -> None:
    body = {"name": "  Acme GmbH ", "email": " Buyer@ACME.example ", "country": "de"}
    created = await client.put("/v1/customers/c-1", json=body, headers=writer)
    assert created.status_code == 201
    data = created.json()
    assert (data["customer_id"], data["name"], data["email"], data["country"]) == (
        "c-1",
        "Acme GmbH",
        "buyer@acme.example",
        "DE",
    )

    updated = await client.put("/v1/customers/c-1", json={"industry": "machinery"}, headers=writer)
    assert updated.status_code == 200
    assert updated.json()["industry"] == "machinery"
    # Fields the update did not name are kept.
    assert updated.json()["email"] == "buyer@acme.example"


async def test_get_unknown_is_404_problem(
    client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    response = await client.get("/v1/customers/nobody", headers=reader)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"country": "XX"}, "country"),
        ({"customer_type": "alien"}, "customer_type"),
        ({"created_at": "2026-03-01T10:00:00"}, "created_at"),
        ({"attributes": "text"}, "attributes"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "x" * 257}, "name"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
async def test_put_rejects_bad_fields(
    client: httpx.AsyncClient, writer: dict[str, str], body: dict[str, object], field: str
) -> None:
    response = await client.put("/v1/customers/c-2", json=body, headers=writer)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == [field]
    missing = await client.get("/v1/customers/c-2", headers=writer)
    assert missing.status_code == 404


async def test_bad_customer_id_is_rejected(
    client: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    response = await client.put("/v1/customers/has space", json={}, headers=writer)
    assert response.status_code == 422
    too_long = await client.put("/v1/customers/" + "x" * 129, json={}, headers=writer)
    assert too_long.status_code == 422


async def test_auth_and_scopes(client: httpx.AsyncClient, reader: dict[str, str]) -> None:
    assert (await client.get("/v1/customers")).status_code == 401
    bad = {"Authorization": "Bearer sk_000000000000_nope"}
    assert (await client.get("/v1/customers", headers=bad)).status_code == 401
    forbidden = await client.put("/v1/customers/c-3", json={}, headers=reader)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == PROBLEM


async def test_list_filters_and_paginates(
    client: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    for i in range(5):
        country = "DE" if i % 2 == 0 else "FR"
        await client.put(f"/v1/customers/c-{i}", json={"country": country}, headers=writer)
    first = (await client.get("/v1/customers?limit=2", headers=writer)).json()
    assert [c["customer_id"] for c in first["items"]] == ["c-0", "c-1"]
    second = (
        await client.get(f"/v1/customers?limit=2&cursor={first['next_cursor']}", headers=writer)
    ).json()
    assert [c["customer_id"] for c in second["items"]] == ["c-2", "c-3"]
    german = (await client.get("/v1/customers?country=de", headers=writer)).json()
    assert [c["customer_id"] for c in german["items"]] == ["c-0", "c-2", "c-4"]
    assert german["next_cursor"] is None
    bad_cursor = await client.get("/v1/customers?cursor=garbage", headers=writer)
    assert bad_cursor.status_code == 422
    too_many = await client.get("/v1/customers?limit=1001", headers=writer)
    assert too_many.status_code == 422


async def test_delete_erases_everything(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await client.put(
        "/v1/customers/c-9",
        json={"name": "Wang Fang", "email": "wang.fang@example.cn", "phone": "+86 10 1234 5678"},
        headers=writer,
    )
    assert (await client.delete("/v1/customers/c-9", headers=writer)).status_code == 204
    assert (await client.get("/v1/customers/c-9", headers=writer)).status_code == 404
    assert (await client.delete("/v1/customers/c-9", headers=writer)).status_code == 404
    dump = await session.execute(
        text("SELECT count(*) FROM customers c WHERE c::text ILIKE '%wang%'")
    )
    assert dump.scalar_one() == 0


async def test_problem_shapes_for_framework_errors(
    client: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    not_json = await client.put(
        "/v1/customers/c-1",
        content=b"{oops",
        headers={**writer, "content-type": "application/json"},
    )
    assert not_json.status_code == 400
    assert not_json.headers["content-type"] == PROBLEM
    wrong_type = await client.put(
        "/v1/customers/c-1", content=b"a=b", headers={**writer, "content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    method = await client.post("/v1/customers/c-1", json={}, headers=writer)
    assert method.status_code == 405
    assert method.headers["content-type"] == PROBLEM
    huge = await client.put(
        "/v1/customers/c-1",
        content=b'{"name": "' + b"x" * (3 * 1024 * 1024) + b'"}',
        headers={**writer, "content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert (await client.get("/nowhere")).status_code == 404


async def test_health_ready_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
    metrics = await client.get("/metrics")
    assert "stratum_http_requests_total" in metrics.text


async def test_explicit_nulls_clear_fields(
    client: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    await client.put("/v1/customers/c-5", json={"name": "A", "industry": "food"}, headers=writer)
    cleared = await client.put(
        "/v1/customers/c-5", json={"name": None, "industry": None, "phone": None}, headers=writer
    )
    assert cleared.status_code == 200
    assert (cleared.json()["name"], cleared.json()["industry"]) == (None, None)


async def test_read_matches_the_list_and_the_upsert(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    body = {
        "name": "Acme GmbH",
        "email": "buyer@acme.example",
        "phone": "+49 30 1234567",
        "country": "DE",
        "customer_type": "business",
        "role": "distributor",
        "industry": "machinery",
        "company_size": "medium",
        "created_at": "2025-04-01T08:30:00.250000Z",
        "attributes": {"crm_owner": "li.wei", "score": 7, "tags": ["a", "b"]},
    }
    put = await client.put("/v1/customers/c-read", json=body, headers=writer)
    await client.put("/v1/customers/c-bare", json={}, headers=writer)
    await session.execute(
        text(
            "INSERT INTO classifications (customer_id, as_of, policy_version, tier, tier_score,"
            " stage, strategy, churn_probability, orders, revenue, expected_revenue, segments)"
            " SELECT id, '2026-03-01T00:00:00Z', 1, 'high', 0.9123, 'loyal', 'high_loyal', 0.1,"
            " 4, 100, 10, '{}' FROM customers WHERE external_id = 'c-read'"
        )
    )
    await session.commit()

    listed = (await client.get("/v1/customers", headers=writer)).json()["items"]
    by_id = {item["customer_id"]: item for item in listed}
    for customer_id in ("c-read", "c-bare"):
        got = await client.get(f"/v1/customers/{customer_id}", headers=writer)
        assert got.status_code == 200
        assert got.headers["content-type"] == "application/json"
        # The same fields in the same order as the ORM-built page item.
        assert list(got.json()) == list(by_id[customer_id])
        assert got.json() == by_id[customer_id]
    read = (await client.get("/v1/customers/c-read", headers=writer)).json()
    assert read["classification"] == {
        "tier": "high",
        "stage": "loyal",
        "tier_score": 0.9123,
        "as_of": "2026-03-01T00:00:00Z",
        "policy_version": 1,
    }
    assert {k: v for k, v in read.items() if k != "classification"} == {
        k: v for k, v in put.json().items() if k != "classification"
    }
    assert (await client.get("/v1/customers/c-bare", headers=writer)).json()[
        "classification"
    ] is None


async def test_reads_give_their_connections_back(
    app: Any, client: httpx.AsyncClient, reader: dict[str, str], writer: dict[str, str]
) -> None:
    # Found and not found, each read hands its connection back to the pool for the next
    # one: sequential reads open no new connections (a connection left to the garbage
    # collector is closed, not reused).
    await client.put("/v1/customers/c-pool", json={}, headers=writer)
    await client.get("/v1/customers/c-pool", headers=reader)
    pool = app.state.engine.sync_engine.pool
    opened: list[object] = []

    def count(*_: object) -> None:
        opened.append(1)

    event.listen(pool, "connect", count)
    try:
        for i in range(30):
            found = await client.get("/v1/customers/c-pool", headers=reader)
            missing = await client.get(f"/v1/customers/gone-{i}", headers=reader)
            assert (found.status_code, missing.status_code) == (200, 404)
    finally:
        event.remove(pool, "connect", count)
    assert len(opened) <= 1
    assert pool.checkedout() == 0
