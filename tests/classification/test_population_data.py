"""The fit's data, read set-based, equals what the per-customer history query gives."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import repository
from app.core.db import raw_connection
from bench.generate import copy_into, generate

T = datetime(2026, 6, 1, tzinfo=UTC)

# The sample as the per-customer query expressed it: one index probe per customer.
_PROBED_SAMPLE = repository._HISTORY_SQL.format(
    where="c.id % $2 = 0 AND (c.created_at <= $1::timestamptz OR a.first_event_at IS NOT NULL)",
    **repository._WHOLE_HISTORY,
)


async def _probed_outcomes(
    session: AsyncSession, *, ids: list[int], start: datetime, end: datetime, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    conn = await raw_connection(session)
    rows = await conn.fetch(
        "SELECT customer_id, count(*) FILTER (WHERE type = 'order') AS orders,"
        " (coalesce(sum(amount_base) FILTER (WHERE type = 'order'), 0)"
        " - coalesce(sum(amount_base) FILTER (WHERE type = 'refund'), 0))::float8 AS revenue"
        " FROM events WHERE occurred_at > $1 AND occurred_at <= $2 AND customer_id % $3 = 0"
        " GROUP BY customer_id",
        start,
        end,
        stride,
    )
    by_id = {r["customer_id"]: (r["orders"], r["revenue"]) for r in rows}
    orders = np.array([by_id.get(i, (0, 0.0))[0] for i in ids], dtype=np.int64)
    revenue = np.array([by_id.get(i, (0, 0.0))[1] for i in ids], dtype=np.float64)
    return orders, revenue


@pytest.mark.parametrize("stride", [1, 3])
async def test_population_and_outcomes_equal_the_per_customer_queries(
    database_url: str, session: AsyncSession, stride: int
) -> None:
    await copy_into(database_url, generate(600, seed=5, end=T))
    conn = await raw_connection(session)
    for as_of in (T, T - timedelta(days=200), T - timedelta(days=5000)):
        expected = repository.to_batch(await conn.fetch(_PROBED_SAMPLE, as_of, stride), as_of=as_of)
        got = await repository.population(session, as_of=as_of, stride=stride)
        assert got.customers == expected.customers
        if as_of == T:
            assert len(got.customers) > 600 // stride // 2
        for field in fields(expected.histories):
            np.testing.assert_array_equal(
                getattr(got.histories, field.name),
                getattr(expected.histories, field.name),
                err_msg=field.name,
            )
            assert getattr(got.histories, field.name).dtype == (
                getattr(expected.histories, field.name).dtype
            )
        ids = [c.id for c in got.customers]
        start = as_of - timedelta(days=365)
        outcomes = await repository.outcomes(
            session, ids=ids, start=start, end=as_of, stride=stride
        )
        orders, revenue = await _probed_outcomes(
            session, ids=ids, start=start, end=as_of, stride=stride
        )
        np.testing.assert_array_equal(outcomes.orders, orders)
        np.testing.assert_array_equal(outcomes.revenue, revenue)
        if as_of == T:
            assert orders.sum() > 0
