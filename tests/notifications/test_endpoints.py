from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

URL = "https://crm.example.com/hooks"


async def test_private_network_urls_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for url in (
        "http://localhost/hooks",
        "http://127.0.0.1:8080/hooks",
        "http://[::1]/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hooks",
        "ftp://crm.example.com/hooks",
        "https://user:pw@crm.example.com/hooks",
        "not a url",
    ):
        response = await client.post(
            "/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=admin
        )
        assert response.status_code == 422, url
        assert response.json()["errors"][0]["field"] == "url", url


@pytest.mark.usefixtures("loopback_allowed")
async def test_crud_and_the_secret_is_sealed_at_rest(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    reader: dict[str, str],
    session: AsyncSession,
) -> None:
    body = {
        "url": URL,
        "events": ["customer.tier_changed", "segment.entered"],
        "description": "CRM",
    }
    assert (
        await client.post("/v1/webhook-endpoints", json=body, headers=reader)
    ).status_code == 403
    bad = await client.post(
        "/v1/webhook-endpoints", json={**body, "events": ["customer.deleted"]}, headers=admin
    )
    assert bad.status_code == 422
    created = await client.post("/v1/webhook-endpoints", json=body, headers=admin)
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert set(endpoint) >= {"id", "url", "events", "description", "secret", "created_at"}

    shown = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin)).json()
    assert "secret" not in shown and shown["url"] == URL
    listed = (await client.get("/v1/webhook-endpoints", headers=admin)).json()
    assert [e["id"] for e in listed["items"]] == [endpoint["id"]]

    changed = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"events": ["*"]}, headers=admin
    )
    assert changed.status_code == 200 and changed.json()["events"] == ["*"]
    refused = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"url": "gopher://x"}, headers=admin
    )
    assert refused.status_code == 422

    # A dump of the table does not show the secret.
    dump = (await session.execute(text("SELECT * FROM webhook_endpoints"))).all()
    secret_body = endpoint["secret"].removeprefix("whsec_")
    assert secret_body not in repr(dump) and endpoint["secret"] not in repr(dump)

    assert (
        await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin)
    ).status_code == 204
    assert (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin)
    ).status_code == 404
    assert (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=admin)
    ).status_code == 404
