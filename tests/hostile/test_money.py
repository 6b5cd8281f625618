"""Concurrent policy changes and ingestion: every base amount is amount x the current rate."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.events import service as events
from app.events.schemas import EventIn
from app.main import create_app
from app.policies import service as policies
from tests.hostile.support import order, signed

RATES = ["1.10", "0.95", "1.30", "1.05", "0.88", "1.21", "1.17"]


async def test_concurrent_rate_changes_and_orders_end_converted_at_the_final_rate(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session: AsyncSession,
    settings: Any,
    database_url: str,
) -> None:
    policy = (await client.get("/v1/policy", headers=admin)).json()
    policy["exchange_rates"] = {"EUR": "1.00"}
    assert (await client.put("/v1/policy", json=policy, headers=admin)).status_code == 200

    # A second app with its own engine and pool stands for another worker process.
    other = create_app(settings, database_url=database_url)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as second:
            clients = [client, second]

            async def writer(n: int) -> None:
                for batch in range(6):
                    events = [
                        order(
                            f"w{n}-{batch}-{i}",
                            f"c-{(n * 7 + i) % 40}",
                            amount="10.10",
                            currency="EUR",
                        )
                        for i in range(5)
                    ]
                    response = await clients[n % 2].post(
                        "/v1/events", json={"events": events}, headers=admin
                    )
                    assert response.status_code == 200, response.text
                    await asyncio.sleep(0)

            async def hooks() -> None:
                for i in range(6):
                    body, headers = signed(
                        order(f"h-{i}", f"c-h{i}", amount="3.30", currency="EUR"), msg_id=f"m{i}"
                    )
                    response = await second.post(
                        "/v1/webhooks/orders", content=body, headers=headers
                    )
                    assert response.status_code == 200, response.text

            async def change(rate: str, via: httpx.AsyncClient) -> None:
                document = {**policy, "exchange_rates": {"EUR": rate}}
                response = await via.put("/v1/policy", json=document, headers=admin)
                assert response.status_code == 200, response.text

            async def changer() -> None:
                for i, rate in enumerate(RATES[:5]):
                    await change(rate, clients[i % 2])
                    await asyncio.sleep(0.01)
                # Twice as two concurrent changes, from both processes.
                await asyncio.gather(change(RATES[5], client), change(RATES[6], second))

            await asyncio.gather(*(writer(n) for n in range(4)), hooks(), changer())

    latest = (await client.get("/v1/policy", headers=admin)).json()
    assert latest["version"] == 2 + len(RATES)
    rate = Decimal(latest["exchange_rates"]["EUR"])
    rows = (
        await session.execute(text("SELECT amount, amount_base FROM events WHERE currency = 'EUR'"))
    ).all()
    assert len(rows) == 4 * 6 * 5 + 6
    wrong = [(a, b) for a, b in rows if b != (a * rate).quantize(Decimal("0.000001"))]
    assert wrong == []


async def _eur_policy(
    client: httpx.AsyncClient, admin: dict[str, str], rate: str
) -> dict[str, Any]:
    policy = (await client.get("/v1/policy", headers=admin)).json()
    policy["exchange_rates"] = {"EUR": rate}
    assert (await client.put("/v1/policy", json=policy, headers=admin)).status_code == 200
    return policy


async def _mis_converted(session: AsyncSession, rate: Decimal) -> list[Any]:
    rows = await session.execute(
        text("SELECT amount, amount_base FROM events WHERE currency = 'EUR'")
    )
    found = [(a, b) for a, b in rows.all() if b != (a * rate).quantize(Decimal("0.000001"))]
    await session.commit()
    return found


async def test_a_batch_in_flight_while_the_rate_changes_is_rebased(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    policy = await _eur_policy(client, admin, "1.00")
    async with app.state.sessionmaker() as ingesting:
        event = EventIn.model_validate(order(amount="10.00", currency="EUR"))
        await events.store(ingesting, events=[event])
        change = asyncio.create_task(
            client.put(
                "/v1/policy", json={**policy, "exchange_rates": {"EUR": "2.00"}}, headers=admin
            )
        )
        await asyncio.sleep(0.5)  # the change runs now, or waits for this batch
        await ingesting.commit()
    assert (await change).status_code == 200
    assert await _mis_converted(session, Decimal("2.00")) == []


async def test_a_rate_cached_by_another_process_is_not_used_to_convert(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    await _eur_policy(client, admin, "1.00")
    await _eur_policy(client, admin, "3.00")
    # What another worker still believes for up to a second: version 2 is the newest.
    policies._latest = (time.monotonic() + 60, 2)
    posted = await client.post(
        "/v1/events", json={"events": [order(amount="10.00", currency="EUR")]}, headers=admin
    )
    assert posted.status_code == 200
    assert await _mis_converted(session, Decimal("3.00")) == []


async def test_two_concurrent_changes_do_not_diff_against_the_same_version(
    client: httpx.AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    policy = await _eur_policy(client, admin, "1.00")
    posted = await client.post(
        "/v1/events", json={"events": [order(amount="10.00", currency="EUR")]}, headers=admin
    )
    assert posted.status_code == 200
    for _ in range(3):
        answers = await asyncio.gather(
            *(
                client.put(
                    "/v1/policy", json={**policy, "exchange_rates": {"EUR": r}}, headers=admin
                )
                for r in ("2.00", "1.00")
            )
        )
        assert [a.status_code for a in answers] == [200, 200]
        latest = (await client.get("/v1/policy", headers=admin)).json()
        assert await _mis_converted(session, Decimal(latest["exchange_rates"]["EUR"])) == []
