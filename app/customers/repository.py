"""SQL for customers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import (
    ARRAY,
    LargeBinary,
    Row,
    bindparam,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification.models import CurrentClassification
from app.core.db import raw_connection
from app.customers import erasure, erasure_gate
from app.customers.models import Customer, Erasure


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    country: str | None = None
    customer_type: str | None = None
    role: str | None = None
    industry: str | None = None
    tier: str | None = None
    stage: str | None = None


async def upsert(session: AsyncSession, *, external_id: str, values: dict[str, Any]) -> bool | None:
    """Create the customer or set the given fields; True when it was created, None (and
    nothing stored) when the id was erased."""
    columns = {"external_id": external_id, **values}
    source = select(
        *(literal(v, Customer.__table__.c[k].type).label(k) for k, v in columns.items())
    )
    not_erased = ~exists().where(Erasure.subject == erasure.subject(external_id))
    base = insert(Customer).from_select(list(columns), source.where(not_erased))
    statement: Any = base.on_conflict_do_update(
        index_elements=[Customer.external_id],
        set_={**{k: base.excluded[k] for k in values}, "updated_at": func.now()},
    ).returning(literal_column("(xmax = 0)").label("created"))
    created = (await session.execute(statement)).scalar_one_or_none()
    return None if created is None else bool(created)


# A statement of its own before the erasure check: an erasure under way holds the row, and
# this waits for it to commit so that the check then sees it. Without it, an upsert
# waiting on that row would insert the customer again once the erasure deleted it.
_HOLD = "SELECT 1 FROM customers WHERE external_id = :external_id FOR KEY SHARE"


async def hold(session: AsyncSession, *, external_id: str) -> None:
    """Lock the customer's row, if there is one, until the transaction ends."""
    await session.execute(text(_HOLD), {"external_id": external_id})


# The read of `GET /v1/customers/{id}`: the columns of `CustomerRead`, by its names.
_READ = """
SELECT c.external_id AS customer_id, c.name, c.email, c.phone, c.country, c.customer_type,
       c.role, c.industry, c.company_size, c.created_at, c.attributes, c.updated_at,
       k.tier, k.stage, k.tier_score, k.as_of, k.policy_version
  FROM customers c
  LEFT JOIN classifications k ON k.customer_id = c.id
 WHERE c.external_id = $1
"""


async def read(session: AsyncSession, *, external_id: str) -> asyncpg.Record | None:
    """The customer and their stored classification as one row, for a read that needs
    no ORM objects (one prepared statement, no entity loading)."""
    conn = await raw_connection(session)
    row: asyncpg.Record | None = await conn.fetchrow(_READ, external_id)
    return row


async def list_page(
    session: AsyncSession, *, filters: CustomerFilter, after: int | None, limit: int
) -> Sequence[Row[Customer, CurrentClassification]]:
    statement = select(Customer, CurrentClassification).outerjoin(
        CurrentClassification, CurrentClassification.customer_id == Customer.id
    )
    for column, value in (
        (Customer.country, filters.country),
        (Customer.customer_type, filters.customer_type),
        (Customer.role, filters.role),
        (Customer.industry, filters.industry),
        (CurrentClassification.tier, filters.tier),
        (CurrentClassification.stage, filters.stage),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if after is not None:
        statement = statement.where(Customer.id > after)
    statement = statement.order_by(Customer.id).limit(limit + 1)
    return (await session.execute(statement)).all()


# After the gate (`erasure_gate`: the stores of classifications under way commit first),
# the customer row: its delete waits for every transaction that has locked the row to
# insert events (they commit first), and no later one can lock it. Snapshots follow the
# row (ON DELETE CASCADE).
_ERASE_CUSTOMER = "DELETE FROM customers WHERE external_id = :external_id RETURNING id"

# Then, in a statement of its own (a snapshot that sees what those transactions
# committed), everything else that holds their data: their events, classification and
# its changes (none carries a foreign key; notifications follow their change), the
# deliveries that name their events, re-classification marks, and the stored population
# fits made at or after their first event (fits are bounded per policy version, so this
# drops a handful).
_ERASE_HISTORY = """
WITH their_events AS (
    DELETE FROM events WHERE customer_id = :id RETURNING event_id, occurred_at
), classification AS (
    DELETE FROM classifications WHERE customer_id = :id
), changes AS (
    DELETE FROM classification_changes WHERE customer_id = :id
), deliveries AS (
    DELETE FROM webhook_deliveries d USING their_events t WHERE d.event_id = t.event_id
), marks AS (
    DELETE FROM dirty_customers WHERE customer_id = :id
), fits AS (
    DELETE FROM population_fits
     WHERE cutoff >= (SELECT date_trunc('day', min(occurred_at)) FROM their_events)
)
INSERT INTO erasures (subject) VALUES (:subject)
ON CONFLICT (subject) DO UPDATE SET erased_at = now()
"""

_ERASED = "SELECT subject FROM erasures WHERE subject = ANY(:subjects)"


async def erase(session: AsyncSession, *, external_id: str, subject: bytes) -> bool:
    """Delete the customer and everything of theirs, and remember the erasure."""
    known = select(Customer.id).where(Customer.external_id == external_id)
    if (await session.execute(known)).first() is None:
        return False  # nothing to erase: no need to wait at the gate
    await erasure_gate.close(session)
    gone = (await session.execute(text(_ERASE_CUSTOMER), {"external_id": external_id})).first()
    if gone is None:
        return False
    await session.execute(text(_ERASE_HISTORY), {"id": gone.id, "subject": subject})
    return True


async def erased(session: AsyncSession, *, subjects: Sequence[bytes]) -> set[bytes]:
    """The given erasure subjects that are on record."""
    if not subjects:
        return set()
    result = await session.execute(
        text(_ERASED).bindparams(bindparam("subjects", type_=ARRAY(LargeBinary))),
        {"subjects": list(subjects)},
    )
    return {bytes(row[0]) for row in result}


async def lift_erasure(session: AsyncSession, *, subject: bytes) -> bool:
    """Forget an erasure (the customer came back and consented); True if there was one."""
    result = await session.execute(delete(Erasure).where(Erasure.subject == subject))
    return bool(result.rowcount)  # type: ignore[attr-defined]
