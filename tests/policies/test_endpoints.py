from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest


async def _policy(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/v1/policy", headers=headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_default_policy_exists(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    policy = await _policy(client, admin)
    assert policy["version"] == 1
    assert policy["base_currency"] == "USD"
    assert policy["horizon_days"] == 180
    assert policy["tiers"]["future_weight"] == 10.0
    codes = {s["code"] for s in policy["strategies"]}
    assert {"high_at_risk", "low_new", "prospect"} <= codes
    assert all("zh-CN" in s["label"] for s in policy["strategies"])


async def test_put_makes_a_new_version(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    policy = await _policy(client, admin)
    policy["home_country"] = "cn"
    policy["exchange_rates"]["EUR"] = 1.1
    response = await client.put("/v1/policy", json=policy, headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 2
    assert body["home_country"] == "CN"
    assert body["exchange_rates"]["EUR"] == "1.1"
    assert (await _policy(client, admin))["version"] == 2


def _broken(policy: dict[str, Any], change: str) -> dict[str, Any]:
    bad = copy.deepcopy(policy)
    if change == "currency":
        bad["base_currency"] = "XYZ"
    elif change == "rate":
        bad["exchange_rates"]["EUR"] = "-1"
    elif change == "tiers":
        bad["tiers"]["mid"] = "0.9"
    elif change == "stages":
        bad["stages"]["churn_multiple"] = 1.0
    elif change == "coverage":
        bad["strategies"] = [s for s in bad["strategies"] if s["code"] != "low_new"]
    elif change == "duplicate":
        bad["strategies"].append(bad["strategies"][0])
    elif change == "unknown":
        bad["surprise"] = True
    elif change == "horizon":
        bad["horizon_days"] = 0
    elif change == "weight":
        bad["tiers"]["future_weight"] = 101
    return bad


@pytest.mark.parametrize(
    "change",
    [
        "currency",
        "rate",
        "tiers",
        "stages",
        "coverage",
        "duplicate",
        "unknown",
        "horizon",
        "weight",
    ],
)
async def test_invalid_policy_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], change: str
) -> None:
    policy = await _policy(client, admin)
    response = await client.put("/v1/policy", json=_broken(policy, change), headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"]
    assert (await _policy(client, admin))["version"] == 1


async def test_policy_needs_admin(client: httpx.AsyncClient, writer: dict[str, str]) -> None:
    assert (await client.get("/v1/policy", headers=writer)).status_code == 403
    assert (await client.put("/v1/policy", json={}, headers=writer)).status_code == 403
    assert (await client.get("/v1/policy")).status_code == 401
