"""Customer-defined segment membership of re-classified customers, and its changes.

Membership is evaluated with the segment's own rule (the same SQL as its members list)
for the customers just re-classified; who entered or left is written to the outbox in
the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification.models import CurrentClassification
from app.core.problems import Invalid
from app.customers.models import Customer
from app.notifications.json import iso_time
from app.notifications.models import Notification, SegmentMembership, WebhookEndpoint
from app.segments.models import Segment
from app.segments.rules import compile_rule


@dataclass(frozen=True, slots=True)
class Scope:
    """The customers just re-classified: an id range (after, upto] or a list of ids."""

    after: int | None = None
    upto: int | None = None
    ids: tuple[int, ...] = ()

    def condition(self, column: Any) -> ColumnElement[bool]:
        if self.after is not None and self.upto is not None:
            return and_(column > self.after, column <= self.upto)
        return and_(column.in_(self.ids))


async def track(session: AsyncSession, scope: Scope) -> tuple[int, int]:
    """Bring stored memberships up to date for the scope; (entered, exited) counts."""
    segments = (await session.execute(select(Segment.id, Segment.key, Segment.rule))).all()
    if not segments:
        return 0, 0
    notify = bool(
        (await session.execute(select(exists().where(WebhookEndpoint.id.is_not(None))))).scalar()
    )
    as_of = func.coalesce(CurrentClassification.as_of, func.now())
    entered_total = exited_total = 0
    for segment_id, key, rule in segments:
        try:
            condition = compile_rule(rule)
        except Invalid:
            continue  # a rule the current vocabulary no longer accepts matches no one
        matching = (
            select(Customer.id)
            .outerjoin(CurrentClassification, CurrentClassification.customer_id == Customer.id)
            .where(condition, scope.condition(Customer.id))
        )
        entered = (
            (
                await session.execute(
                    pg_insert(SegmentMembership)
                    .from_select(
                        ["segment_id", "customer_id"],
                        matching.with_only_columns(literal(segment_id), Customer.id),
                    )
                    .on_conflict_do_nothing()
                    .returning(SegmentMembership.customer_id)
                )
            )
            .scalars()
            .all()
        )
        exited = (
            (
                await session.execute(
                    delete(SegmentMembership)
                    .where(
                        SegmentMembership.segment_id == segment_id,
                        scope.condition(SegmentMembership.customer_id),
                        SegmentMembership.customer_id.not_in(matching),
                    )
                    .returning(SegmentMembership.customer_id)
                )
            )
            .scalars()
            .all()
        )
        entered_total += len(entered)
        exited_total += len(exited)
        if notify:
            for kind, ids in (("segment.entered", entered), ("segment.exited", exited)):
                if ids:
                    await _write(session, kind=kind, key=key, ids=list(ids), as_of=as_of)
    return entered_total, exited_total


async def _write(
    session: AsyncSession, *, kind: str, key: str, ids: list[int], as_of: ColumnElement[datetime]
) -> None:
    rows = (
        await session.execute(
            select(Customer.id, Customer.external_id, as_of)
            .outerjoin(CurrentClassification, CurrentClassification.customer_id == Customer.id)
            .where(Customer.id.in_(ids))
            .order_by(Customer.id)
        )
    ).all()
    await session.execute(
        insert(Notification),
        [
            {
                "customer_id": cid,
                "type": kind,
                "data": {"customer_id": external, "segment": key, "as_of": iso_time(moment)},
            }
            for cid, external, moment in rows
        ],
    )
