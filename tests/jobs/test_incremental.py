from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import recompute
from app.jobs import incremental
from app.jobs.worker import Worker
from tests.jobs.conftest import eventually, orders


async def test_new_events_are_classified_and_stored_within_seconds(
    client: httpx.AsyncClient, admin: dict[str, str], worker: Worker
) -> None:
    segment = {
        "key": "regulars",
        "name": "Regulars",
        "rule": {"field": "orders", "op": "gte", "value": 3},
    }
    assert (await client.post("/v1/segments", json=segment, headers=admin)).status_code == 201
    await orders(client, admin, "newbie", [2])

    async def stored(customer: str, tier: str | None = None) -> dict[str, Any] | None:
        body = (await client.get(f"/v1/customers/{customer}", headers=admin)).json()
        brief: dict[str, Any] | None = body["classification"]
        return brief

    first = await eventually(lambda: stored("newbie"))
    assert first["stage"] == "new"
    members = (await client.get("/v1/segments/regulars/customers", headers=admin)).json()
    assert members["items"] == []

    # More orders: the stored stage, list filters and segment members follow by themselves.
    await orders(client, admin, "newbie", [20, 40, 60])

    async def returning() -> bool:
        brief = await stored("newbie")
        return brief is not None and brief["stage"] != "new"

    await eventually(returning)
    stage = (await stored("newbie"))["stage"]  # type: ignore[index]
    listed = (await client.get(f"/v1/customers?stage={stage}", headers=admin)).json()
    assert [c["customer_id"] for c in listed["items"]] == ["newbie"]
    members = (await client.get("/v1/segments/regulars/customers", headers=admin)).json()
    assert [c["customer_id"] for c in members["items"]] == ["newbie"]
    overview = (await client.get("/v1/segments/overview", headers=admin)).json()
    assert "newbie" not in str(overview) and overview


async def test_a_batch_takes_every_mark_once_and_leaves_new_ones(
    client: httpx.AsyncClient, admin: dict[str, str], app: Any, session: AsyncSession
) -> None:
    for name in ("a", "b", "c"):
        await orders(client, admin, name, [3, 9])
    marks = (await session.execute(text("SELECT count(*) FROM dirty_customers"))).scalar_one()
    assert marks == 3
    assert await incremental.run_once(app.state.sessionmaker, batch=2) == 2
    assert await incremental.run_once(app.state.sessionmaker, batch=2) == 1
    assert await incremental.run_once(app.state.sessionmaker, batch=2) == 0
    stored = (await session.execute(text("SELECT count(*) FROM classifications"))).scalar_one()
    assert stored == 3
    changes = (
        await session.execute(text("SELECT count(*) FROM classification_changes"))
    ).scalar_one()
    assert changes == 3


async def test_a_round_waits_for_a_pause_in_ingest_but_not_past_the_max_delay(
    client: httpx.AsyncClient, admin: dict[str, str], app: Any, session: AsyncSession
) -> None:
    await orders(client, admin, "busy", [3])
    waiting = {"settle": 3600.0, "max_delay": 3600.0}
    assert await incremental.run_once(app.state.sessionmaker, batch=10, **waiting) == 0
    marks = (await session.execute(text("SELECT count(*) FROM dirty_customers"))).scalar_one()
    assert marks == 1
    # The oldest mark has waited long enough: the round runs although ingest goes on.
    overdue = {"settle": 3600.0, "max_delay": 0.0}
    assert await incremental.run_once(app.state.sessionmaker, batch=10, **overdue) == 1
    assert await incremental.run_once(app.state.sessionmaker, batch=10) == 0


async def test_every_mark_of_a_customer_is_taken_in_one_round(
    client: httpx.AsyncClient, admin: dict[str, str], app: Any, session: AsyncSession
) -> None:
    for days in ([3], [9], [12]):
        await orders(client, admin, "often", days)
    await orders(client, admin, "once", [5])
    marks = (await session.execute(text("SELECT count(*) FROM dirty_customers"))).scalar_one()
    assert marks == 4
    # The oldest mark picks "often"; its later marks go with it, "once" waits its turn.
    assert await incremental.run_once(app.state.sessionmaker, batch=1) == 1
    left = (await session.execute(text("SELECT count(*) FROM dirty_customers"))).scalar_one()
    assert left == 1
    assert await incremental.run_once(app.state.sessionmaker, batch=1) == 1
    assert await incremental.run_once(app.state.sessionmaker, batch=1) == 0


async def test_erasure_takes_the_customers_marks_with_it(
    client: httpx.AsyncClient, admin: dict[str, str], app: Any, session: AsyncSession
) -> None:
    await orders(client, admin, "leaving", [3, 9])
    await orders(client, admin, "staying", [4])
    assert (await client.delete("/v1/customers/leaving", headers=admin)).status_code == 204
    marked = await session.execute(
        text("SELECT c.external_id FROM dirty_customers d JOIN customers c ON c.id = d.customer_id")
    )
    assert [row[0] for row in marked] == ["staying"]
    total = (await session.execute(text("SELECT count(*) FROM dirty_customers"))).scalar_one()
    assert total == 1


async def test_an_erasure_during_a_round_waits_for_it_and_then_takes_everything(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    app: Any,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await orders(client, admin, "leaving", [3, 9])
    classify = recompute.run_customers
    erasing: list[asyncio.Task[httpx.Response]] = []

    async def erase_meanwhile(*args: Any, **kwargs: Any) -> recompute.ChunkResult:
        # The round holds the customer's marks; the erasure, which deletes marks too,
        # must wait for the round rather than hold something the round then waits for.
        erasing.append(asyncio.create_task(client.delete("/v1/customers/leaving", headers=admin)))
        await asyncio.sleep(0.5)
        assert not erasing[0].done()
        return await classify(*args, **kwargs)

    monkeypatch.setattr(recompute, "run_customers", erase_meanwhile)
    assert await incremental.run_once(app.state.sessionmaker, batch=10) == 1
    assert (await erasing[0]).status_code == 204
    for table in ("classifications", "classification_changes", "dirty_customers"):
        left = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
        assert left == 0, table


async def test_a_mark_whose_customer_is_gone_is_dropped_without_storing_anything(
    client: httpx.AsyncClient, admin: dict[str, str], app: Any, session: AsyncSession
) -> None:
    await orders(client, admin, "present", [3])
    gone = (await session.execute(text("SELECT max(id) + 1000 FROM customers"))).scalar_one()
    await session.execute(
        text("INSERT INTO dirty_customers (customer_id) VALUES (:id)"), {"id": gone}
    )
    await session.commit()
    await incremental.run_once(app.state.sessionmaker, batch=10)
    left = (await session.execute(text("SELECT count(*) FROM dirty_customers"))).scalar_one()
    assert left == 0
    stored = (await session.execute(text("SELECT customer_id FROM classifications"))).scalars()
    assert gone not in list(stored)
    count = (await session.execute(text("SELECT count(*) FROM classifications"))).scalar_one()
    assert count == 1


async def test_a_backfill_reuses_the_invalidated_fit_for_a_while_instead_of_refitting(
    client: httpx.AsyncClient, admin: dict[str, str], app: Any, monkeypatch: Any
) -> None:
    from app.classification import population

    fits: list[int] = []
    real = population.fit

    async def counted(*args: Any, **kwargs: Any) -> Any:
        fits.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(population, "fit", counted)
    monkeypatch.setattr(population, "_cache", {})
    sessionmaker = app.state.sessionmaker
    await orders(client, admin, "early", [30, 60])
    assert await incremental.run_once(sessionmaker, batch=100, reuse_fit_for=60.0) == 1
    assert len(fits) == 1
    # Late events (before today) delete today's fit; the model known a moment ago answers.
    await orders(client, admin, "late", [40, 80])
    assert await incremental.run_once(sessionmaker, batch=100, reuse_fit_for=60.0) == 1
    assert len(fits) == 1
    # Without reuse (or once it has run out) the model is fitted again.
    await orders(client, admin, "later", [50])
    assert await incremental.run_once(sessionmaker, batch=100) == 1
    assert len(fits) == 2
