"""Segments: the tier x stage overview, built-in and customer-defined segments' members."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import ColumnElement, and_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification.models import CurrentClassification
from app.core.pagination import Page, decode_cursor, encode_cursor
from app.core.problems import Conflict, NotFound
from app.customers.schemas import CustomerRead
from app.customers.service import customer_page
from app.policies.schemas import STAGES, TIERS
from app.policies.service import current_policy
from app.segments import repository
from app.segments.models import Segment
from app.segments.rules import compile_rule
from app.segments.schemas import Cell, Overview, SegmentCreate, SegmentRead, SegmentWrite

CENTS = Decimal("0.01")


async def overview(session: AsyncSession) -> Overview:
    currency = (await current_policy(session)).document.base_currency
    rows = await repository.overview(session)
    total_customers = await repository.customer_count(session)
    cells = [
        Cell(tier=t, stage=s, customers=n, revenue=str(Decimal(r).quantize(CENTS)))
        for t, s, n, r, _, _ in rows
    ]
    as_of = max((row[4] for row in rows), default=None)
    version = max((row[5] for row in rows), default=None)
    classified = sum(c.customers for c in cells)
    return Overview(
        currency=currency,
        classified=classified,
        unclassified=max(int(total_customers) - classified, 0),
        revenue=str(sum((Decimal(c.revenue) for c in cells), Decimal(0)).quantize(CENTS)),
        as_of=as_of,
        policy_version=version,
        cells=cells,
        tiers={t: sum(c.customers for c in cells if c.tier == t) for t in TIERS},
        stages={s: sum(c.customers for c in cells if c.stage == s) for s in STAGES},
    )


def builtin_condition(key: str) -> ColumnElement[bool] | None:
    """`high.at_risk`, `high.*` or `*.at_risk`: a tier x stage cell of the overview."""
    tier, dot, stage = key.partition(".")
    if not dot or tier not in (*TIERS, "*") or stage not in (*STAGES, "*"):
        return None
    k = CurrentClassification
    parts: list[ColumnElement[bool]] = [k.customer_id.is_not(None)]
    if tier != "*":
        parts.append(k.tier == tier)
    if stage != "*":
        parts.append(k.stage == stage)
    return and_(*parts)


async def members(
    session: AsyncSession, *, key: str, cursor: str | None, limit: int
) -> Page[CustomerRead]:
    condition = builtin_condition(key)
    if condition is None:
        segment = await repository.get(session, key=key)
        if segment is None:
            raise NotFound(f"No segment '{key}'")
        condition = compile_rule(segment.rule)
    rows = await repository.members(
        session, condition=condition, after=decode_cursor(cursor), limit=limit
    )
    return customer_page(rows, limit=limit)


def _read(segment: Segment) -> SegmentRead:
    return SegmentRead(
        key=segment.key,
        name=segment.name,
        description=segment.description,
        rule=segment.rule,
        created_at=segment.created_at,
        updated_at=segment.updated_at,
    )


async def create(session: AsyncSession, *, data: SegmentCreate) -> SegmentRead:
    compile_rule(data.rule)
    segment = Segment(key=data.key, name=data.name, description=data.description, rule=data.rule)
    try:
        # A savepoint: the duplicate key fails only this insert, not the request's
        # transaction, whose dependency then rolls back on the Conflict anyway.
        async with session.begin_nested():
            await repository.add(session, segment=segment)
    except IntegrityError as exc:
        raise Conflict(f"A segment '{data.key}' exists already") from exc
    await session.refresh(segment)
    return _read(segment)


async def get(session: AsyncSession, *, key: str) -> SegmentRead:
    segment = await repository.get(session, key=key)
    if segment is None:
        raise NotFound(f"No segment '{key}'")
    return _read(segment)


async def list_segments(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> Page[SegmentRead]:
    rows = await repository.list_page(session, after=decode_cursor(cursor), limit=limit)
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return Page[SegmentRead](items=[_read(s) for s in rows[:limit]], next_cursor=next_cursor)


async def replace(session: AsyncSession, *, key: str, data: SegmentWrite) -> SegmentRead:
    compile_rule(data.rule)
    values = {"name": data.name, "description": data.description, "rule": data.rule}
    if not await repository.replace(session, key=key, values=values):
        raise NotFound(f"No segment '{key}'")
    return await get(session, key=key)


async def delete(session: AsyncSession, *, key: str) -> None:
    if not await repository.remove(session, key=key):
        raise NotFound(f"No segment '{key}'")
