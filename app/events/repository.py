"""SQL for events: set-based, one statement per batch whatever its size."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import raw_connection

# Sorted keys make concurrent batches take row locks in one order: no deadlocks.
_ENSURE_CUSTOMERS = """
INSERT INTO customers (external_id)
SELECT id FROM unnest($1::text[]) AS t(id) ORDER BY id
ON CONFLICT (external_id) DO NOTHING
"""

_CUSTOMER_IDS = "SELECT external_id, id FROM customers WHERE external_id = ANY($1::text[])"

_INSERT_EVENTS = """
INSERT INTO events (event_id, customer_id, type, occurred_at, amount, currency, amount_base,
                    margin, margin_base, rating, channel, attributes)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::numeric[],
                     $6::text[], $7::numeric[], $8::numeric[], $9::numeric[], $10::int2[],
                     $11::text[], $12::jsonb[]) AS t
ORDER BY 1
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""

_PAGE = """
SELECT e.id, e.event_id, e.type, e.occurred_at, e.amount, e.currency, e.amount_base,
       e.margin, e.rating, e.channel, e.attributes::text AS attributes
  FROM events e JOIN customers c ON c.id = e.customer_id
 WHERE c.external_id = $1 AND ($2::bigint IS NULL OR e.id < $2)
 ORDER BY e.id DESC
 LIMIT $3
"""


async def ensure_customers(session: AsyncSession, *, external_ids: Sequence[str]) -> dict[str, int]:
    """Internal ids for the given customers, creating the unknown ones."""
    conn = await raw_connection(session)
    ordered = sorted(set(external_ids))
    await conn.execute(_ENSURE_CUSTOMERS, ordered)
    rows = await conn.fetch(_CUSTOMER_IDS, ordered)
    return {r["external_id"]: r["id"] for r in rows}


EventRow = tuple[
    str,
    int,
    str,
    datetime,
    Decimal | None,
    str | None,
    Decimal | None,
    Decimal | None,
    Decimal | None,
    int | None,
    str | None,
    str | None,
]


async def insert_events(session: AsyncSession, *, rows: Sequence[EventRow]) -> list[str]:
    """Store the rows whose event_id is new; return the ids stored."""
    conn = await raw_connection(session)
    columns: list[list[Any]] = [list(column) for column in zip(*rows, strict=True)]
    stored = await conn.fetch(_INSERT_EVENTS, *columns)
    return [r["event_id"] for r in stored]


async def page_for_customer(
    session: AsyncSession, *, external_id: str, before: int | None, limit: int
) -> list[Any]:
    conn = await raw_connection(session)
    return list(await conn.fetch(_PAGE, external_id, before, limit + 1))


async def customer_exists(session: AsyncSession, *, external_id: str) -> bool:
    conn = await raw_connection(session)
    found = await conn.fetchval("SELECT 1 FROM customers WHERE external_id = $1", external_id)
    return found is not None
