"""Seeding and signing in for the dashboard tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

try:  # the bulk job's module name, old or new
    from app.classification.recompute import recompute  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - whichever exists
    from app.classification.jobs import recompute

NOW = datetime.now(UTC).replace(microsecond=0)
SCRIPT_NAME = "<script>alert('x')</script>"

# customer, name, country, type, order days ago (amount 100 each), contacts days ago
CUSTOMERS: list[tuple[str, str, str, str, list[int], list[int]]] = [
    ("c-weekly", "Weekly GmbH", "DE", "business", [2, 9, 16, 23, 30, 37, 44, 51, 58], []),
    ("c-steady", "Steady Ltd", "CN", "business", [5, 40, 75, 110, 145, 180, 215], [1]),
    ("c-slipping", "Slipping Inc", "US", "business", [60, 67, 74, 81, 88, 95, 102], []),
    ("c-once", "Once Only", "CN", "individual", [400], []),
    ("c-new", "Fresh Start", "FR", "individual", [3], []),
    ("c-lead", "Just Looking", "CN", "individual", [], [4]),
    ("c-script", SCRIPT_NAME, "GB", "individual", [12, 50], []),
]


def _events(cid: str, orders: list[int], contacts: list[int]) -> list[dict[str, Any]]:
    events = [
        {
            "event_id": f"{cid}-o{d}",
            "customer_id": cid,
            "type": "order",
            "occurred_at": (NOW - timedelta(days=d)).isoformat(),
            "amount": "100.00",
        }
        for d in orders
    ]
    events += [
        {
            "event_id": f"{cid}-i{d}",
            "customer_id": cid,
            "type": "interaction",
            "occurred_at": (NOW - timedelta(days=d)).isoformat(),
        }
        for d in contacts
    ]
    return events


async def seed(client: httpx.AsyncClient, headers: dict[str, str], session: AsyncSession) -> None:
    """Customers with histories, classified 30 days ago and now (so there are moves)."""
    events: list[dict[str, Any]] = []
    for cid, name, country, kind, orders, contacts in CUSTOMERS:
        response = await client.put(
            f"/v1/customers/{cid}",
            json={"name": name, "country": country, "customer_type": kind},
            headers=headers,
        )
        assert response.status_code in (200, 201), response.text
        events += _events(cid, orders, contacts)
    response = await client.post("/v1/events", json={"events": events}, headers=headers)
    assert response.status_code == 200, response.text
    await recompute(session, as_of=NOW - timedelta(days=30))
    await recompute(session, as_of=NOW)


def dashboard_client(app: object, *, https: bool = False) -> httpx.AsyncClient:
    """A client of its own, so its cookies are this test's alone."""
    base = "https://stratum.test" if https else "http://stratum.test"
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)  # type: ignore[arg-type]


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no csrf_token in the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/dashboard/sign-in")
    assert form.status_code == 200
    return await client.post(
        "/dashboard/sign-in", data={"api_key": key, "csrf_token": csrf_token(form.text)}
    )


def bearer_key(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")
