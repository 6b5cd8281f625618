from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CUSTOMERS = [
    # id, country, attributes, tier, stage, churn, revenue
    ("a", "DE", {"plan": "gold", "seats": 40}, "high", "at_risk", 0.7, "1000.50"),
    ("b", "FR", {"plan": "basic", "seats": 3}, "high", "loyal", 0.1, "800"),
    ("c", "DE", {}, "low", "churned", 0.95, "20"),
    ("d", "US", {"plan": "gold"}, None, None, None, None),
]


async def _seed(client: httpx.AsyncClient, headers: dict[str, str], session: AsyncSession) -> None:
    for cid, country, attributes, tier, stage, churn, revenue in CUSTOMERS:
        await client.put(
            f"/v1/customers/{cid}",
            json={"country": country, "attributes": attributes},
            headers=headers,
        )
        if tier is None:
            continue
        await session.execute(
            text(
                "INSERT INTO classifications (customer_id, as_of, policy_version, tier, tier_score,"
                " stage, strategy, churn_probability, orders, revenue, expected_revenue, segments)"
                " SELECT id, '2026-06-01T00:00:00Z', 1, :tier, 0.5, :stage, 'x', :churn, 3,"
                " :revenue, 0, CAST(:segments AS jsonb) FROM customers WHERE external_id = :cid"
            ),
            {
                "tier": tier,
                "stage": stage,
                "churn": churn,
                "revenue": revenue,
                "cid": cid,
                "segments": '{"rfm_group": "champions"}' if cid == "b" else "{}",
            },
        )
    await session.commit()


async def test_overview_counts_and_revenue(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await _seed(client, writer, session)
    body = (await client.get("/v1/segments/overview", headers=writer)).json()
    assert body["classified"] == 3 and body["unclassified"] == 1
    assert body["revenue"] == "1820.50"
    assert body["currency"] == "USD"
    cells = {(c["tier"], c["stage"]): (c["customers"], c["revenue"]) for c in body["cells"]}
    assert cells == {
        ("high", "at_risk"): (1, "1000.50"),
        ("high", "loyal"): (1, "800.00"),
        ("low", "churned"): (1, "20.00"),
    }
    assert body["tiers"] == {"high": 2, "mid": 0, "low": 1}
    assert body["stages"]["churned"] == 1
    assert body["policy_version"] == 1


async def test_builtin_segment_members(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await _seed(client, writer, session)
    page = (await client.get("/v1/segments/high.*/customers?limit=1", headers=writer)).json()
    assert [c["customer_id"] for c in page["items"]] == ["a"]
    rest = (
        await client.get(
            f"/v1/segments/high.*/customers?cursor={page['next_cursor']}", headers=writer
        )
    ).json()
    assert [c["customer_id"] for c in rest["items"]] == ["b"] and rest["next_cursor"] is None
    churned = (await client.get("/v1/segments/*.churned/customers", headers=writer)).json()
    assert [c["customer_id"] for c in churned["items"]] == ["c"]
    assert (
        await client.get("/v1/segments/high.sleepy/customers", headers=writer)
    ).status_code == 404


RULES: list[tuple[dict[str, Any], list[str]]] = [
    ({"field": "country", "op": "eq", "value": "DE"}, ["a", "c"]),
    ({"field": "country", "op": "in", "value": ["FR", "US"]}, ["b", "d"]),
    ({"field": "country", "op": "not_in", "value": ["DE"]}, ["b", "d"]),
    ({"field": "tier", "op": "ne", "value": "high"}, ["c"]),
    ({"field": "churn_probability", "op": "gte", "value": 0.7}, ["a", "c"]),
    ({"field": "revenue", "op": "lt", "value": 900}, ["b", "c"]),
    ({"field": "attributes.plan", "op": "eq", "value": "gold"}, ["a", "d"]),
    ({"field": "attributes.seats", "op": "gt", "value": 10}, ["a"]),
    ({"field": "attributes.plan", "op": "exists"}, ["a", "b", "d"]),
    ({"field": "stage", "op": "exists", "value": False}, ["d"]),
    ({"field": "attributes.plan", "op": "contains", "value": "ol"}, ["a", "d"]),
    ({"field": "segments.rfm_group", "op": "eq", "value": "champions"}, ["b"]),
    (
        {
            "all": [
                {"field": "country", "op": "eq", "value": "DE"},
                {
                    "any": [
                        {"field": "tier", "op": "eq", "value": "high"},
                        {"field": "orders", "op": "gt", "value": 100},
                    ]
                },
            ]
        },
        ["a"],
    ),
    ({"not": {"field": "country", "op": "eq", "value": "DE"}}, ["b", "d"]),
]


@pytest.mark.parametrize(("rule", "expected"), RULES)
async def test_custom_segment_rules(
    client: httpx.AsyncClient,
    writer: dict[str, str],
    session: AsyncSession,
    rule: dict[str, Any],
    expected: list[str],
) -> None:
    await _seed(client, writer, session)
    created = await client.post(
        "/v1/segments", json={"key": "s1", "name": "Test", "rule": rule}, headers=writer
    )
    assert created.status_code == 201, created.text
    members = (await client.get("/v1/segments/s1/customers", headers=writer)).json()
    assert [c["customer_id"] for c in members["items"]] == expected


@pytest.mark.parametrize(
    "rule",
    [
        {"field": "country; DROP TABLE customers", "op": "eq", "value": "DE"},
        {"field": "country", "op": "like", "value": "DE"},
        {"field": "orders", "op": "gt", "value": "many"},
        {"field": "country", "op": "in", "value": []},
        {"field": "attributes.a b", "op": "eq", "value": 1},
        {"all": []},
        {"all": [{"not": {"not": {"not": {"not": {"not": {"field": "tier", "op": "exists"}}}}}}]},
        {"field": "tier", "op": "eq", "value": "high", "extra": 1},
        {"field": "created_at", "op": "gt", "value": "yesterday"},
    ],
)
async def test_bad_rules_are_422_and_change_nothing(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession, rule: dict[str, Any]
) -> None:
    response = await client.post(
        "/v1/segments", json={"key": "bad", "name": "Bad", "rule": rule}, headers=writer
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("rule")
    assert (await client.get("/v1/segments/bad", headers=writer)).status_code == 404
    assert (await session.execute(text("SELECT count(*) FROM customers"))).scalar_one() == 0


async def test_segment_crud(
    client: httpx.AsyncClient, writer: dict[str, str], reader: dict[str, str]
) -> None:
    rule = {"field": "country", "op": "eq", "value": "DE"}
    body = {"key": "germany", "name": "Germany", "rule": rule}
    assert (await client.post("/v1/segments", json=body, headers=reader)).status_code == 403
    assert (await client.post("/v1/segments", json=body, headers=writer)).status_code == 201
    assert (await client.post("/v1/segments", json=body, headers=writer)).status_code == 409
    assert (
        await client.post("/v1/segments", json={**body, "key": "Bad Key"}, headers=writer)
    ).status_code == 422
    edited = await client.put(
        "/v1/segments/germany",
        json={"name": "DE", "rule": {"field": "country", "op": "eq", "value": "AT"}},
        headers=writer,
    )
    assert edited.status_code == 200 and edited.json()["name"] == "DE"
    listed = (await client.get("/v1/segments", headers=reader)).json()
    assert [s["key"] for s in listed["items"]] == ["germany"]
    assert (
        await client.put("/v1/segments/nope", json={"name": "x", "rule": rule}, headers=writer)
    ).status_code == 404
    assert (await client.delete("/v1/segments/germany", headers=writer)).status_code == 204
    assert (await client.delete("/v1/segments/germany", headers=writer)).status_code == 404
    assert (await client.get("/v1/segments/overview")).status_code == 401


async def test_erased_customer_leaves_segments(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await _seed(client, writer, session)
    await client.delete("/v1/customers/a", headers=writer)
    members = (await client.get("/v1/segments/high.*/customers", headers=writer)).json()
    assert [c["customer_id"] for c in members["items"]] == ["b"]
