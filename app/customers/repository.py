"""SQL for customers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification.models import CurrentClassification
from app.customers.models import Customer


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    country: str | None = None
    customer_type: str | None = None
    role: str | None = None
    industry: str | None = None
    tier: str | None = None
    stage: str | None = None


async def upsert(session: AsyncSession, *, external_id: str, values: dict[str, Any]) -> bool:
    """Create the customer or set the given fields; True when it was created."""
    base = insert(Customer).values(external_id=external_id, **values)
    statement: Any = base.on_conflict_do_update(
        index_elements=[Customer.external_id],
        set_={**{k: base.excluded[k] for k in values}, "updated_at": func.now()},
    ).returning(literal_column("(xmax = 0)").label("created"))
    return bool((await session.execute(statement)).scalar_one())


async def get(
    session: AsyncSession, *, external_id: str
) -> Row[Customer, CurrentClassification] | None:
    statement = (
        select(Customer, CurrentClassification)
        .outerjoin(CurrentClassification, CurrentClassification.customer_id == Customer.id)
        .where(Customer.external_id == external_id)
    )
    return (await session.execute(statement)).first()


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


async def erase(session: AsyncSession, *, external_id: str) -> bool:
    """Delete the customer; events and classifications go with it (ON DELETE CASCADE)."""
    result = await session.execute(
        delete(Customer).where(Customer.external_id == external_id).returning(Customer.id)
    )
    return result.first() is not None
