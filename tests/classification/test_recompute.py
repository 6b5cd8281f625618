from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import fit_sample, range_histories, recompute, store
from bench.generate import copy_into, generate
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


async def _internal_id(session: AsyncSession, external_id: str) -> int:
    found: int = (
        await session.execute(
            text("SELECT id FROM customers WHERE external_id = :e"), {"e": external_id}
        )
    ).scalar_one()
    return found


async def _count(session: AsyncSession, sql: str) -> int:
    value: int = (await session.execute(text(sql))).scalar_one()
    return value


async def test_plan_splits_the_id_space_and_a_range_run_twice_adds_no_changes(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    for name in ("a", "b", "c", "d", "e"):
        await _orders(client, writer, name, [5, 40])
    the_plan = await recompute.plan(session, as_of=T, chunk=2)
    await session.commit()
    lo = await _count(session, "SELECT min(id) FROM customers")
    assert the_plan.ranges == ((lo - 1, lo + 1), (lo + 1, lo + 3), (lo + 3, lo + 4))
    assert the_plan.as_of == T
    stored = await _count(session, "SELECT count(*) FROM population_fits")
    assert stored == 1

    after, upto = the_plan.ranges[0]
    first = await recompute.run_range(session, the_plan, after=after, upto=upto)
    await session.commit()
    assert (first.customers, first.tier_changed, first.stage_changed) == (2, 2, 2)
    again = await recompute.run_range(session, the_plan, after=after, upto=upto)
    await session.commit()
    assert (again.customers, again.tier_changed, again.stage_changed) == (2, 0, 0)
    assert await _count(session, "SELECT count(*) FROM classification_changes") == 2
    assert await _count(session, "SELECT count(*) FROM classifications") == 2


async def test_run_range_does_not_commit(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await _orders(client, writer, "a", [5])
    the_plan = await recompute.plan(session, as_of=T)
    await session.commit()
    after, upto = the_plan.ranges[0]
    result = await recompute.run_range(session, the_plan, after=after, upto=upto)
    assert result.customers == 1
    await session.rollback()
    assert await _count(session, "SELECT count(*) FROM classifications") == 0
    assert await _count(session, "SELECT count(*) FROM classification_changes") == 0


async def test_an_older_as_of_never_overwrites_a_newer_one(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await _orders(client, writer, "weekly", [3, 10, 17, 24, 31])
    later = T + timedelta(days=60)
    await recompute.recompute(session, as_of=later)
    assert await _count(session, "SELECT count(*) FROM classification_changes") == 1
    stale = await recompute.recompute(session, as_of=T)
    assert (stale.tier_changed, stale.stage_changed) == (0, 0)
    row = (await session.execute(text("SELECT as_of, stage FROM classifications"))).one()
    assert tuple(row) == (later, "at_risk")
    assert await _count(session, "SELECT count(*) FROM classification_changes") == 1


async def test_run_customers_classifies_only_those_ids(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await _orders(client, writer, "a", [5])
    await _orders(client, writer, "b", [5])
    wanted = await _internal_id(session, "b")
    result = await recompute.run_customers(session, ids=[wanted, 10**12], as_of=T)
    await session.commit()
    assert (result.customers, result.stage_changed) == (1, 1)
    stored = (await session.execute(text("SELECT customer_id FROM classifications"))).scalars()
    assert list(stored) == [wanted]


async def test_a_customer_erased_while_the_range_runs_is_skipped(
    client: httpx.AsyncClient,
    writer: dict[str, str],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("keep", "gone", "also"):
        await _orders(client, writer, name, [5, 20])
    read = range_histories.read_range

    async def read_then_erase(*args: Any, **kwargs: Any) -> range_histories.RangeBatch:
        batch = await read(*args, **kwargs)
        # Another connection erases a customer after its history was read.
        response = await client.delete("/v1/customers/gone", headers=writer)
        assert response.status_code == 204
        return batch

    monkeypatch.setattr(range_histories, "read_range", read_then_erase)
    summary = await recompute.recompute(session, as_of=T)
    assert summary.customers == 3
    assert summary.stage_changed == 2
    stored = (
        await session.execute(
            text(
                "SELECT c.external_id FROM classifications k JOIN customers c"
                " ON c.id = k.customer_id ORDER BY 1"
            )
        )
    ).scalars()
    assert list(stored) == ["also", "keep"]


async def test_an_erasure_waiting_on_a_range_takes_what_the_range_stored(
    app: Any, client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await _orders(client, writer, "gone", [5, 20])
    gone = await _internal_id(session, "gone")
    async with app.state.sessionmaker() as ranging:
        # The range has stored the customer's classification and change, uncommitted...
        result = await recompute.run_customers(ranging, ids=[gone], as_of=T)
        assert result.stage_changed == 1
        erasing = asyncio.create_task(client.delete("/v1/customers/gone", headers=writer))
        await asyncio.sleep(0.5)
        # ...so the erasure waits for it, then takes what it committed.
        assert not erasing.done()
        await ranging.commit()
    assert (await erasing).status_code == 204
    for table in ("classifications", "classification_changes"):
        left = await session.execute(
            text(f"SELECT count(*) FROM {table} WHERE customer_id = :id"),
            {"id": gone},
        )
        assert left.scalar_one() == 0, table


async def test_revenue_beyond_the_stored_range_skips_that_customer_only(
    client: httpx.AsyncClient, writer: dict[str, str], session: AsyncSession
) -> None:
    await _orders(client, writer, "normal", [5, 20])
    await _orders(client, writer, "whale", [6])
    whale = await _internal_id(session, "whale")
    # Two orders just below NUMERIC(24,6)'s limit each: their sum is beyond it.
    for n in (1, 2):
        await session.execute(
            text(
                "INSERT INTO events (event_id, customer_id, type, occurred_at, amount,"
                " currency, amount_base) VALUES (:e, :c, 'order', :t, 9e17, 'EUR', 9e17)"
            ),
            {"e": f"whale-big-{n}", "c": whale, "t": T - timedelta(days=n)},
        )
    await session.commit()
    summary = await recompute.recompute(session, as_of=T)
    assert (summary.customers, summary.skipped) == (2, 1)
    assert "1 not stored" in summary.line()
    stored = (
        await session.execute(
            text(
                "SELECT c.external_id FROM classifications k JOIN customers c"
                " ON c.id = k.customer_id"
            )
        )
    ).scalars()
    assert list(stored) == ["normal"]


@pytest.mark.parametrize("sample", [None, 120])
async def test_stored_classifications_equal_the_endpoint(
    database_url: str,
    client: httpx.AsyncClient,
    reader: dict[str, str],
    writer: dict[str, str],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    sample: int | None,
) -> None:
    if sample is not None:
        # The fit learns from a sample of the population, as it does past 25,000.
        monkeypatch.setattr(fit_sample, "SAMPLE_SIZE", sample)
    data = generate(400, seed=11, end=T)
    await copy_into(database_url, data)
    # Expected revenue beyond what a float holds to the cent: stored from its exact value.
    events = [
        {
            "event_id": f"big-{d}",
            "customer_id": "big",
            "type": "order",
            "occurred_at": (T - timedelta(days=d)).isoformat(),
            "amount": "41234567890.37",
        }
        for d in (4, 30, 61, 95)
    ]
    response = await client.post("/v1/events", json={"events": events}, headers=writer)
    assert response.status_code == 200
    as_of = T - timedelta(hours=3)
    # Ranges of 100 on two connections: the ranges run side by side.
    summary = await recompute.recompute(session, as_of=as_of, chunk=100, workers=2)
    assert summary.customers == 401
    rows = (
        await session.execute(
            text(
                "SELECT c.external_id, k.tier, k.stage, k.strategy, k.churn_probability,"
                " k.expected_revenue, k.segments, k.tier_score FROM classifications k"
                " JOIN customers c ON c.id = k.customer_id"
                " WHERE c.id % 7 = 0 OR c.external_id = 'big'"
            )
        )
    ).all()
    assert len(rows) > 40
    (big,) = [r for r in rows if r[0] == "big"]
    assert big[5] > store._EXACT_LIMIT
    for external_id, tier, stage, strategy, churn, expected, segments, score in rows:
        response = await client.get(
            f"/v1/customers/{external_id}/classification",
            params={"as_of": as_of.isoformat()},
            headers=reader,
        )
        body = response.json()
        assert response.status_code == 200, body
        assert (tier, stage, strategy) == (
            body["tier"]["code"],
            body["stage"]["code"],
            body["strategy"]["code"],
        )
        assert score == body["tier"]["score"]
        assert churn == body["metrics"]["churn_probability"]
        assert str(expected.normalize()) == str(
            Decimal(body["metrics"]["expected_revenue"]).normalize()
        )
        assert segments == body["segments"]


def test_order_day_gaps_follow_distinct_days() -> None:
    ids = np.array([30, 10, 20], dtype=np.int64)
    # Customer 10: days 1, 1, 4, 10; customer 30: day 7 only; customer 20: no orders.
    order_ids = np.array([10, 10, 10, 10, 30], dtype=np.int64)
    days = np.array([1, 1, 4, 10, 7], dtype=np.int64)
    count, longest, last = range_histories.order_day_gaps(ids, order_ids, days)
    assert count.tolist() == [1, 3, 0]
    assert longest[1] == 6.0 and last[1] == 6.0
    assert np.isnan(longest[[0, 2]]).all() and np.isnan(last[[0, 2]]).all()
    count, longest, last = range_histories.order_day_gaps(
        ids, np.array([10, 10, 10]), np.array([1, 9, 10])
    )
    assert (count[1], longest[1], last[1]) == (3, 8.0, 1.0)


async def test_a_failing_range_fails_the_run_with_its_own_error(
    client: httpx.AsyncClient,
    writer: dict[str, str],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("a", "b", "c", "d"):
        await _orders(client, writer, name, [5, 20])
    read = range_histories.read_range
    first = await _count(session, "SELECT min(id) FROM customers")
    await session.commit()

    async def fail_past_the_first(*args: Any, **kwargs: Any) -> range_histories.RangeBatch:
        if kwargs["after"] >= first:
            raise RuntimeError("disk on fire")
        return await read(*args, **kwargs)

    monkeypatch.setattr(range_histories, "read_range", fail_past_the_first)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await recompute.recompute(session, as_of=T, chunk=1, workers=2)
    await session.rollback()
    assert await _count(session, "SELECT count(*) FROM classifications") <= 1


async def test_a_failing_fit_fails_the_run_and_the_ranges_read_meanwhile_store_nothing(
    client: httpx.AsyncClient,
    writer: dict[str, str],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("a", "b", "c", "d"):
        await _orders(client, writer, name, [5, 20])
    await session.commit()
    read = range_histories.read_range
    reads: list[int] = []

    async def counted(*args: Any, **kwargs: Any) -> range_histories.RangeBatch:
        batch = await read(*args, **kwargs)
        reads.append(len(batch))
        return batch

    async def failing_fit(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)  # the ranges are read meanwhile
        raise RuntimeError("optimiser on fire")

    monkeypatch.setattr(range_histories, "read_range", counted)
    monkeypatch.setattr(recompute.population, "model_for", failing_fit)
    with pytest.raises(RuntimeError, match="optimiser on fire"):
        await recompute.recompute(session, as_of=T, chunk=1, workers=2)
    await session.rollback()
    assert reads == [1, 1]  # one range per connection, read while the model was fitting
    assert await _count(session, "SELECT count(*) FROM classifications") == 0
