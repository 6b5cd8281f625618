"""Stored tier/stage changes, filtered, oldest first, keyset-paginated on (as_of, id).

The order matches the index `(as_of, id)` so a page is an index range scan however
many changes the table holds; a customer filter uses `(customer_id, as_of, id)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.changes.schemas import ChangeRead, TierStage
from app.classification.models import ClassificationChange
from app.core.pagination import Page, decode_position, encode_position
from app.core.problems import Invalid, field_error
from app.customers.models import Customer


@dataclass(frozen=True, slots=True)
class ChangeFilter:
    since: datetime | None = None
    until: datetime | None = None
    customer_id: str | None = None
    from_tier: str | None = None
    to_tier: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None


def statement(
    filters: ChangeFilter, *, after: tuple[datetime, int] | None, limit: int
) -> Select[ClassificationChange, str]:
    k = ClassificationChange
    query = select(k, Customer.external_id).join(Customer, Customer.id == k.customer_id)
    if filters.customer_id is not None:
        internal = (
            select(Customer.id).where(Customer.external_id == filters.customer_id).scalar_subquery()
        )
        query = query.where(k.customer_id == internal)
    if filters.since is not None:
        query = query.where(k.as_of >= filters.since)
    if filters.until is not None:
        query = query.where(k.as_of < filters.until)
    for column, value in (
        (k.from_tier, filters.from_tier),
        (k.to_tier, filters.to_tier),
        (k.from_stage, filters.from_stage),
        (k.to_stage, filters.to_stage),
    ):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(tuple_(k.as_of, k.id) > tuple_(*after))
    return query.order_by(k.as_of, k.id).limit(limit + 1)


def _read(change: ClassificationChange, external_id: str) -> ChangeRead:
    before = (
        None
        if change.from_tier is None or change.from_stage is None
        else TierStage(tier=change.from_tier, stage=change.from_stage)
    )
    return ChangeRead(
        customer_id=external_id,
        as_of=change.as_of,
        policy_version=change.policy_version,
        from_=before,
        to=TierStage(tier=change.to_tier, stage=change.to_stage),
    )


async def list_changes(
    session: AsyncSession, *, filters: ChangeFilter, cursor: str | None, limit: int
) -> Page[ChangeRead]:
    if filters.since and filters.until and filters.since > filters.until:
        raise Invalid(
            "`since` is after `until`", errors=[field_error(["since"], "must not be after until")]
        )
    rows = (
        await session.execute(statement(filters, after=decode_position(cursor), limit=limit))
    ).all()
    items = [_read(change, external) for change, external in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = encode_position(last.as_of, last.id)
    return Page[ChangeRead](items=items, next_cursor=next_cursor)
