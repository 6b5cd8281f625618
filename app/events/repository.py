"""SQL for events: set-based, a fixed number of statements per batch whatever its size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import transaction_connection

# Set-based statements whose list parameters travel as one comma-joined string each
# (`string_to_array`): asyncpg checks every element of a list parameter against
# collections.abc, which costs the API worker ~0.5 ms per 1000-element column. Ids, codes,
# times and decimals cannot contain a comma (ID_PATTERN, ISO codes, ISO times); channel and
# attributes can, and stay text arrays. An empty string stands for NULL.
#
# Keys are taken in one order (COLLATE "C": byte order, the cheapest total order) so
# concurrent batches wait on each other instead of deadlocking. Customers that exist are
# skipped before the insert: no speculative insertion, no sequence value spent. Nor is an
# erased customer created again: the batch checked for erasures in an earlier snapshot,
# and one that committed since (it deleted the row this statement would not find) is
# seen here; their events then drop out of the join below.
_ENSURE_CUSTOMERS = """
INSERT INTO customers (external_id)
SELECT w.external_id
  FROM unnest(string_to_array($1, ','), string_to_array($2, ',')) AS w(external_id, subject)
 WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.external_id = w.external_id)
   AND NOT EXISTS (SELECT 1 FROM erasures e WHERE e.subject = decode(w.subject, 'hex'))
 ORDER BY w.external_id COLLATE "C"
ON CONFLICT (external_id) DO NOTHING
"""

# A new statement, so it sees the customers that _ENSURE_CUSTOMERS waited for a
# concurrent batch to commit; the join maps external ids to internal ones without a
# round trip through Python. Each customer row is locked as the events' foreign key
# would lock it (the table has none, migration 0011): an erasure waits for this
# transaction, and a customer erased meanwhile drops out of the join, which the count of
# joined rows tells.
_INSERT_EVENTS = """
WITH joined AS (
    SELECT t.event_id, c.id AS customer_id, t.type, t.occurred_at::timestamptz,
           t.amount::numeric, t.currency, t.amount_base::numeric, t.margin::numeric,
           t.margin_base::numeric, t.rating::int2, t.channel, t.attributes::jsonb
      FROM unnest(string_to_array($1, ','), string_to_array($2, ','),
                  string_to_array($3, ','), string_to_array($4, ','),
                  string_to_array($5, ',', ''), string_to_array($6, ',', ''),
                  string_to_array($7, ',', ''), string_to_array($8, ',', ''),
                  string_to_array($9, ',', ''), string_to_array($10, ',', ''),
                  $11::text[], $12::text[])
           AS t(event_id, customer, type, occurred_at, amount, currency, amount_base,
                margin, margin_base, rating, channel, attributes)
      JOIN customers c ON c.external_id = t.customer
       FOR KEY SHARE OF c
), stored AS (
    INSERT INTO events (event_id, customer_id, type, occurred_at, amount, currency,
                        amount_base, margin, margin_base, rating, channel, attributes)
    SELECT * FROM joined ORDER BY event_id COLLATE "C"
    ON CONFLICT (event_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM stored) AS stored, (SELECT count(*) FROM joined) AS joined
"""

_CUSTOMER_ID = "SELECT id FROM customers WHERE external_id = $1"

_COLUMNS = """
SELECT id, event_id, type, occurred_at, amount, currency, amount_base, margin, margin_base,
       rating, channel, attributes::text AS attributes, received_at
  FROM events
"""

_PAGE = (
    _COLUMNS
    + """
 WHERE customer_id = $1
 ORDER BY occurred_at DESC, id DESC
 LIMIT $2
"""
)

# `occurred_at <= $2` is the index condition (ix_events_customer_time); the id
# tie-break only filters the rows at that very instant.
_PAGE_AFTER = (
    _COLUMNS
    + """
 WHERE customer_id = $1 AND occurred_at <= $2 AND (occurred_at < $2 OR id < $3)
 ORDER BY occurred_at DESC, id DESC
 LIMIT $4
"""
)

# event_id, customer_id (external), type, occurred_at (ISO), amount, currency, amount_base,
# margin, margin_base (decimal strings), rating, channel, attributes (JSON text)
EventRow = tuple[
    str,
    str,
    str,
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    int | None,
    str | None,
    str | None,
]
Position = tuple[datetime, int]
_JOINED = 10  # the leading columns that travel comma-joined


async def ensure_customers(session: AsyncSession, *, subjects: Mapping[bytes, str]) -> None:
    """Create the customers not stored yet nor erased (bare: just their id), given by
    their erasure subject (`erasure.subjects`)."""
    conn = await transaction_connection(session)
    await conn.execute(
        _ENSURE_CUSTOMERS, ",".join(subjects.values()), ",".join(s.hex() for s in subjects)
    )


class CustomerGone(Exception):
    """A customer of the batch was erased by a transaction that committed while the
    insert waited for it; the statement's work is to be undone and the batch checked
    again."""


async def insert_events(session: AsyncSession, *, rows: Sequence[EventRow]) -> int:
    """Store the rows whose event_id is new; how many were stored.

    Event ids must be distinct and every customer must exist (ensure_customers);
    CustomerGone when one no longer does.
    """
    if not rows:
        return 0
    conn = await transaction_connection(session)
    columns = list(zip(*rows, strict=True))
    strings = [",".join("" if v is None else str(v) for v in c) for c in columns[:_JOINED]]
    result = await conn.fetchrow(_INSERT_EVENTS, *strings, *map(list, columns[_JOINED:]))
    assert result is not None
    if result["joined"] < len(rows):
        raise CustomerGone
    stored: int = result["stored"]
    return stored


async def customer_id(session: AsyncSession, *, external_id: str) -> int | None:
    conn = await transaction_connection(session)
    found: int | None = await conn.fetchval(_CUSTOMER_ID, external_id)
    return found


async def page_for_customer(
    session: AsyncSession, *, customer_id: int, before: Position | None, limit: int
) -> list[Any]:
    """Up to `limit` events of one customer, latest first, after the `before` position."""
    conn = await transaction_connection(session)
    if before is None:
        return list(await conn.fetch(_PAGE, customer_id, limit))
    return list(await conn.fetch(_PAGE_AFTER, customer_id, before[0], before[1], limit))
