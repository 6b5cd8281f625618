"""The fit's sample and its data: read as columns, equal to what the per-customer history
query gives, and chosen from nothing after T."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import fit_sample, repository
from app.core.db import raw_connection
from bench.generate import copy_into, generate

T = datetime(2026, 6, 1, tzinfo=UTC)

# The same customers as the per-customer query sees them: one index probe each.
_PROBED = repository._HISTORY_SQL.format(
    where="c.id = ANY($2::bigint[])"
    " AND (c.created_at <= $1::timestamptz OR a.first_event_at IS NOT NULL)",
    **repository._WHOLE_HISTORY,
)


async def _probed_outcomes(
    session: AsyncSession, *, ids: list[int], start: datetime, end: datetime
) -> tuple[np.ndarray, np.ndarray]:
    conn = await raw_connection(session)
    rows = await conn.fetch(
        "SELECT customer_id, count(*) FILTER (WHERE type = 'order') AS orders,"
        " (coalesce(sum(amount_base) FILTER (WHERE type = 'order'), 0)"
        " - coalesce(sum(amount_base) FILTER (WHERE type = 'refund'), 0))::float8 AS revenue"
        " FROM events WHERE occurred_at > $1 AND occurred_at <= $2"
        " AND customer_id = ANY($3::bigint[]) GROUP BY customer_id",
        start,
        end,
        ids,
    )
    by_id = {r["customer_id"]: (r["orders"], r["revenue"]) for r in rows}
    orders = np.array([by_id.get(i, (0, 0.0))[0] for i in ids], dtype=np.int64)
    revenue = np.array([by_id.get(i, (0, 0.0))[1] for i in ids], dtype=np.float64)
    return orders, revenue


async def test_sample_histories_and_outcomes_equal_the_per_customer_queries(
    database_url: str, session: AsyncSession
) -> None:
    await copy_into(database_url, generate(600, seed=5, end=T))
    conn = await raw_connection(session)
    everyone = await fit_sample.sample_ids(conn, as_of=T, size=10_000)
    ids = await fit_sample.sample_ids(conn, as_of=T, size=250)
    assert ids.size == 250 and everyone.size > 500
    assert np.all(np.diff(ids) > 0) and np.isin(ids, everyone).all()
    # The orders are read once, as of T; each earlier T takes its own from them.
    sample_orders = await fit_sample.read_orders(conn, ids=ids, as_of=T)
    for as_of in (T, T - timedelta(days=200), T - timedelta(days=5000)):
        expected = repository.to_batch(await conn.fetch(_PROBED, as_of, ids.tolist()), as_of=as_of)
        found, got = await fit_sample.histories(conn, ids=ids, as_of=as_of, orders=sample_orders)
        assert found.tolist() == [c.id for c in expected.customers]
        if as_of == T:
            assert found.size == ids.size
        for field in fields(expected.histories):
            np.testing.assert_array_equal(
                getattr(got, field.name), getattr(expected.histories, field.name), field.name
            )
            assert getattr(got, field.name).dtype == getattr(expected.histories, field.name).dtype
        start = as_of - timedelta(days=365)
        outcomes = await fit_sample.outcomes(conn, ids=found, start=start, end=as_of)
        orders, revenue = await _probed_outcomes(
            session, ids=found.tolist(), start=start, end=as_of
        )
        np.testing.assert_array_equal(outcomes.orders, orders)
        np.testing.assert_array_equal(outcomes.revenue, revenue)
        if as_of == T:
            assert orders.sum() > 0


async def test_the_sample_is_fixed_and_blind_to_what_came_after_t(
    database_url: str, session: AsyncSession
) -> None:
    await copy_into(database_url, generate(300, seed=6, end=T))
    conn = await raw_connection(session)
    before = await fit_sample.sample_ids(conn, as_of=T, size=40)
    assert (await fit_sample.sample_ids(conn, as_of=T, size=40)).tolist() == before.tolist()
    # Customers who appear after T, however many, do not move anyone in or out.
    later = T + timedelta(days=3)
    for n in range(300):
        await session.execute(
            text("INSERT INTO customers (external_id, created_at) VALUES (:e, :t)"),
            {"e": f"later-{n}", "t": later},
        )
    await session.commit()
    assert (await fit_sample.sample_ids(conn, as_of=T, size=40)).tolist() == before.tolist()
    assert (await fit_sample.sample_ids(conn, as_of=later, size=40)).tolist() != before.tolist()
    # One created after T but with an order by T existed at T: it may be drawn.
    late = (
        await session.execute(text("SELECT id FROM customers WHERE external_id = 'later-0'"))
    ).scalar_one()
    await session.execute(
        text(
            "INSERT INTO events (event_id, customer_id, type, occurred_at, amount, currency,"
            " amount_base) VALUES ('early', :c, 'order', :t, 10, 'EUR', 10)"
        ),
        {"c": late, "t": T - timedelta(days=1)},
    )
    await session.commit()
    population = await fit_sample.sample_ids(conn, as_of=T, size=10_000)
    assert late in population.tolist()
    assert population.size == 301
