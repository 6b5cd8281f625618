"""SQL for webhook deliveries: two statements per delivery, on the driver.

A delivery is the request path most often hit one row at a time, so it runs as few
round trips as its guarantees allow: after the shared policy lock, one statement reads
what validation needs and creates the customer, one stores the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import transaction_connection
from app.events.repository import EventRow

# Run after the policy lock is held, so the version it reads is the one in force. The
# customer is created here (bare, unless erased) so that the next statement, with a
# snapshot of its own, sees it even when a concurrent delivery created it first.
_PREPARE = """
WITH erased AS (
    SELECT EXISTS (SELECT 1 FROM erasures WHERE subject = $2::bytea) AS yes
), ensured AS (
    INSERT INTO customers (external_id)
    SELECT $1::text
     WHERE NOT (SELECT yes FROM erased)
       AND NOT EXISTS (SELECT 1 FROM customers WHERE external_id = $1::text)
    ON CONFLICT (external_id) DO NOTHING
)
SELECT (SELECT max(version) FROM policies) AS version, (SELECT yes FROM erased) AS erased
"""

# The customer row is locked first: an erasure that commits meanwhile leaves no row (the
# delivery is then not recorded at all), and one that comes later waits for this commit.
# A delivery id seen before records nothing new; an order stored before stores nothing
# and applies none of its (possibly older) customer fields.
_STORE = """
WITH customer AS (
    SELECT id FROM customers WHERE external_id = $1::text FOR NO KEY UPDATE
), delivery AS (
    INSERT INTO webhook_deliveries (webhook_id, event_id)
    SELECT $2::text, $3::text FROM customer
    ON CONFLICT (webhook_id) DO NOTHING
    RETURNING 1
), stored AS (
    INSERT INTO events (event_id, customer_id, type, occurred_at, amount, currency,
                        amount_base, margin, margin_base, rating, channel, attributes)
    SELECT $3::text, customer.id, $4::text, $5::text::timestamptz, $6::text::numeric,
           $7::text, $8::text::numeric, $9::text::numeric, $10::text::numeric, $11::int2,
           $12::text, $13::text::jsonb
      FROM customer
     WHERE EXISTS (SELECT 1 FROM delivery)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING customer_id
){fields}
SELECT EXISTS (SELECT 1 FROM customer) AS found,
       EXISTS (SELECT 1 FROM delivery) AS recorded,
       EXISTS (SELECT 1 FROM stored) AS stored
"""

_FIELDS = """, fields AS (
    UPDATE customers c SET {assignments}, updated_at = now()
      FROM stored WHERE c.id = stored.customer_id
)"""

# Customer columns a delivery may set, with the cast of their parameter.
CUSTOMER_COLUMNS = {
    "name": "::text",
    "email": "::text",
    "phone": "::text",
    "country": "::text",
    "customer_type": "::text",
    "role": "::text",
    "industry": "::text",
    "company_size": "::text",
    "created_at": "::timestamptz",
    "attributes": "::text::jsonb",
}
_PARAMS = 13


@dataclass(frozen=True, slots=True)
class Prepared:
    version: int | None
    erased: bool


@dataclass(frozen=True, slots=True)
class Stored:
    found: bool  # False: the customer was erased meanwhile, nothing was written
    recorded: bool  # False: a re-delivery of a webhook-id already stored
    stored: bool  # False: the order was stored before (under another webhook-id)


async def prepare(session: AsyncSession, *, customer_id: str, subject: bytes) -> Prepared:
    """The policy version in force and whether the customer was erased; a customer not
    known yet (and not erased) is created."""
    conn = await transaction_connection(session)
    row = await conn.fetchrow(_PREPARE, customer_id, subject)
    assert row is not None
    return Prepared(version=row["version"], erased=bool(row["erased"]))


def _store_statement(names: tuple[str, ...]) -> str:
    if not names:
        return _STORE.format(fields="")
    assignments = ", ".join(
        f"{name} = ${_PARAMS + i}{CUSTOMER_COLUMNS[name]}" for i, name in enumerate(names, 1)
    )
    return _STORE.format(fields=_FIELDS.format(assignments=assignments))


def _column_value(name: str, value: Any) -> Any:
    if name == "attributes":
        return orjson.dumps(value).decode()
    return value


async def store(
    session: AsyncSession,
    *,
    webhook_id: str,
    row: EventRow,
    customer_fields: Mapping[str, Any],
) -> Stored:
    """Record the delivery, store its event and set the customer's fields, in one
    statement; `row` is the event as `app.events.repository` stores it."""
    names = tuple(name for name in CUSTOMER_COLUMNS if name in customer_fields)
    values = [_column_value(name, customer_fields[name]) for name in names]
    conn = await transaction_connection(session)
    event_id, customer_id, *columns = row
    result = await conn.fetchrow(
        _store_statement(names), customer_id, webhook_id, event_id, *columns, *values
    )
    assert result is not None
    return Stored(
        found=bool(result["found"]),
        recorded=bool(result["recorded"]),
        stored=bool(result["stored"]),
    )
