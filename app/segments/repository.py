"""SQL for segments: the overview is one grouped query, members one keyset page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification.models import CurrentClassification
from app.customers.models import Customer
from app.segments.models import Segment


async def overview(session: AsyncSession) -> Sequence[Row[str, str, int, Any, Any, Any]]:
    """Per cell: customers, revenue, and the newest as-of and policy version, in one pass
    over the covering cell index (migration 0008), not one more over the table."""
    k = CurrentClassification
    statement = (
        select(
            k.tier,
            k.stage,
            func.count(),
            func.coalesce(func.sum(k.revenue), 0),
            func.max(k.as_of),
            func.max(k.policy_version),
        )
        .group_by(k.tier, k.stage)
        .order_by(k.tier, k.stage)
    )
    return (await session.execute(statement)).all()


async def customer_count(session: AsyncSession) -> int:
    count: int = (await session.execute(select(func.count()).select_from(Customer))).scalar_one()
    return count


async def members(
    session: AsyncSession, *, condition: ColumnElement[bool], after: int | None, limit: int
) -> Sequence[Row[Customer, CurrentClassification]]:
    statement = (
        select(Customer, CurrentClassification)
        .outerjoin(CurrentClassification, CurrentClassification.customer_id == Customer.id)
        .where(condition)
    )
    if after is not None:
        statement = statement.where(Customer.id > after)
    statement = statement.order_by(Customer.id).limit(limit + 1)
    return (await session.execute(statement)).all()


async def get(session: AsyncSession, *, key: str) -> Segment | None:
    return (await session.execute(select(Segment).where(Segment.key == key))).scalar_one_or_none()


async def list_page(session: AsyncSession, *, after: int | None, limit: int) -> Sequence[Segment]:
    statement = select(Segment).order_by(Segment.id).limit(limit + 1)
    if after is not None:
        statement = statement.where(Segment.id > after)
    return (await session.execute(statement)).scalars().all()


async def add(session: AsyncSession, *, segment: Segment) -> None:
    session.add(segment)
    await session.flush()


async def replace(session: AsyncSession, *, key: str, values: dict[str, Any]) -> bool:
    result = await session.execute(
        update(Segment).where(Segment.key == key).values(**values, updated_at=func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def remove(session: AsyncSession, *, key: str) -> bool:
    result = await session.execute(delete(Segment).where(Segment.key == key))
    return bool(result.rowcount)  # type: ignore[attr-defined]
