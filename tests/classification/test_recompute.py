from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.cli import run_cli

T = datetime(2026, 6, 1, tzinfo=UTC)


async def _orders(
    client: httpx.AsyncClient, headers: dict[str, str], customer: str, days: list[int]
) -> None:
    events = [
        {
            "event_id": f"{customer}-{d}",
            "customer_id": customer,
            "type": "order",
            "occurred_at": (T - timedelta(days=d)).isoformat(),
            "amount": "50",
        }
        for d in days
    ]
    response = await client.post("/v1/events", json={"events": events}, headers=headers)
    assert response.status_code == 200


async def test_recompute_stores_classifications_and_changes(
    database_url: str, client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await _orders(client, writer, "weekly", [3, 10, 17, 24, 31, 38, 45])
    await _orders(client, writer, "once", [400])
    await client.put("/v1/customers/lead", json={"country": "CN"}, headers=writer)

    first = run_cli(database_url, "recompute", "--as-of", "2026-06-01T00:00:00Z")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("classified 3 customers")
    assert "tier changed 3, stage changed 3" in first.stdout

    stages = dict(
        (
            await session.execute(
                text(
                    "SELECT c.external_id, k.stage FROM classifications k JOIN customers c ON c.id = k.customer_id"
                )
            )
        ).all()
    )
    assert stages == {"weekly": "returning", "once": "churned", "lead": "prospect"}
    listed = await client.get("/v1/customers?stage=churned", headers=writer)
    assert [c["customer_id"] for c in listed.json()["items"]] == ["once"]
    assert listed.json()["items"][0]["classification"]["stage"] == "churned"

    # Two months of silence later the weekly buyer is at risk; only that is a change.
    later = run_cli(database_url, "recompute", "--as-of", "2026-07-20T00:00:00Z")
    assert later.returncode == 0, later.stderr
    assert "stage changed 1" in later.stdout
    history = (
        await session.execute(
            text(
                "SELECT from_stage, to_stage FROM classification_changes ch JOIN customers c"
                " ON c.id = ch.customer_id WHERE c.external_id = 'weekly' ORDER BY ch.id"
            )
        )
    ).all()
    assert [tuple(r) for r in history] == [(None, "returning"), ("returning", "at_risk")]


def test_recompute_rejects_bad_time(database_url: str) -> None:
    result = run_cli(database_url, "recompute", "--as-of", "2026-06-01")
    assert result.returncode == 2
    assert result.stdout == ""
