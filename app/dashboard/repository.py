"""SQL behind the dashboard's pages: every statement reads stored classifications and
their changes through an index (see migration 0007), never the events of a population."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.models import ApiKey
from app.classification.models import ClassificationChange, CurrentClassification
from app.customers.models import Customer
from app.dashboard.models import DashboardSession
from app.events.models import Event

HISTOGRAM_BINS = 20


# -- sessions -------------------------------------------------------------------------


async def add_session(
    session: AsyncSession, *, token_hash: str, key_id: int, csrf_token: str, expires_at: datetime
) -> None:
    await session.execute(
        insert(DashboardSession).values(
            token_hash=token_hash, key_id=key_id, csrf_token=csrf_token, expires_at=expires_at
        )
    )


async def drop_expired_sessions(session: AsyncSession) -> None:
    await session.execute(delete(DashboardSession).where(DashboardSession.expires_at <= func.now()))


async def find_session(session: AsyncSession, *, token_hash: str) -> Row[int, str, str, str] | None:
    """A live session whose key is still valid and may read."""
    statement = (
        select(DashboardSession.id, DashboardSession.csrf_token, ApiKey.name, ApiKey.prefix)
        .join(ApiKey, ApiKey.id == DashboardSession.key_id)
        .where(
            DashboardSession.token_hash == token_hash,
            DashboardSession.expires_at > func.now(),
            ApiKey.revoked_at.is_(None),
            ApiKey.scopes.contains(["read"]),
        )
    )
    return (await session.execute(statement)).first()


async def remove_session(session: AsyncSession, *, token_hash: str) -> None:
    await session.execute(delete(DashboardSession).where(DashboardSession.token_hash == token_hash))


# -- overview -------------------------------------------------------------------------

# One pass over the stored classifications gives every breakdown the overview shows
# beside the tier x stage matrix (which is the segments service's own query).
_BREAKDOWNS = """
SELECT grouping(geography, customer_type, bin) AS set_id, geography, customer_type, tier, bin,
       count(*) AS customers, coalesce(sum(revenue), 0) AS revenue
  FROM (SELECT segments->>'geography' AS geography, segments->>'customer_type' AS customer_type,
               tier, revenue,
               least(width_bucket(churn_probability, 0, 1, :bins), :bins) AS bin
          FROM classifications) k
 GROUP BY GROUPING SETS ((geography, tier), (customer_type, tier), (bin))
"""


async def breakdowns(session: AsyncSession) -> Sequence[Row[Any]]:
    return (await session.execute(text(_BREAKDOWNS), {"bins": HISTOGRAM_BINS})).all()


# -- movements and sizes over time ----------------------------------------------------


Flow = Row[datetime, str | None, str | None, str, str, int]


async def change_flows(session: AsyncSession, *, since: datetime) -> Sequence[Flow]:
    """(day, from tier, from stage, to tier, to stage, count) of the changes since `since`."""
    c = ClassificationChange
    day = func.date_trunc("day", c.as_of, "UTC").label("day")
    statement = (
        select(day, c.from_tier, c.from_stage, c.to_tier, c.to_stage, func.count())
        .where(c.as_of > since)
        .group_by(day, c.from_tier, c.from_stage, c.to_tier, c.to_stage)
    )
    return (await session.execute(statement)).all()


async def move_counts(
    session: AsyncSession, *, since: datetime
) -> Sequence[Row[str | None, str | None, str, str, int]]:
    """(from tier, from stage, to tier, to stage, count) of the changes since `since`."""
    c = ClassificationChange
    statement = (
        select(c.from_tier, c.from_stage, c.to_tier, c.to_stage, func.count())
        .where(c.as_of > since)
        .group_by(c.from_tier, c.from_stage, c.to_tier, c.to_stage)
    )
    return (await session.execute(statement)).all()


_CELL_FLOWS = """
SELECT date_trunc('day', as_of, 'UTC') AS day, sum(delta) AS net
  FROM (SELECT as_of, 1 AS delta FROM classification_changes
         WHERE to_tier = :tier AND to_stage = :stage AND as_of > :since
        UNION ALL
        SELECT as_of, -1 FROM classification_changes
         WHERE from_tier = :tier AND from_stage = :stage AND as_of > :since) moves
 GROUP BY 1
"""


async def cell_flows(
    session: AsyncSession, *, tier: str, stage: str, since: datetime
) -> Sequence[Row[Any]]:
    """(day, entries minus exits) of one tier x stage cell since `since`."""
    params = {"tier": tier, "stage": stage, "since": since}
    return (await session.execute(text(_CELL_FLOWS), params)).all()


async def cell_size(session: AsyncSession, *, tier: str, stage: str) -> int:
    k = CurrentClassification
    statement = select(func.count()).where(k.tier == tier, k.stage == stage)
    return int((await session.execute(statement)).scalar_one())


async def changes_page(
    session: AsyncSession,
    *,
    since: datetime,
    conditions: Sequence[ColumnElement[bool]],
    before: tuple[datetime, int] | None,
    limit: int,
) -> Sequence[Row[int, datetime, str | None, str | None, str, str, Customer]]:
    """The newest changes first, keyset-paged on (as_of, id)."""
    c = ClassificationChange
    statement = (
        select(c.id, c.as_of, c.from_tier, c.from_stage, c.to_tier, c.to_stage, Customer)
        .join(Customer, Customer.id == c.customer_id)
        .where(c.as_of > since, *conditions)
    )
    if before is not None:
        statement = statement.where(
            (c.as_of < before[0]) | ((c.as_of == before[0]) & (c.id < before[1]))
        )
    statement = statement.order_by(c.as_of.desc(), c.id.desc()).limit(limit + 1)
    return (await session.execute(statement)).all()


async def customer_changes(
    session: AsyncSession, *, customer_id: int, limit: int
) -> Sequence[Row[datetime, int, str | None, str | None, str, str]]:
    c = ClassificationChange
    statement = (
        select(c.as_of, c.policy_version, c.from_tier, c.from_stage, c.to_tier, c.to_stage)
        .where(c.customer_id == customer_id)
        .order_by(c.changed_at.desc(), c.id.desc())
        .limit(limit)
    )
    return (await session.execute(statement)).all()


# -- members --------------------------------------------------------------------------


async def members(
    session: AsyncSession,
    *,
    condition: ColumnElement[bool],
    after: int | None,
    limit: int,
) -> Sequence[Row[Customer, CurrentClassification]]:
    """Customers matching `condition` with their stored classification, by internal id."""
    k = CurrentClassification
    statement = (
        select(Customer, k)
        .outerjoin(k, k.customer_id == Customer.id)
        .where(condition)
        .order_by(Customer.id)
        .limit(limit + 1)
    )
    if after is not None:
        statement = statement.where(Customer.id > after)
    return (await session.execute(statement)).all()


async def member_rows(
    session: AsyncSession, *, condition: ColumnElement[bool], after: int | None, limit: int
) -> Sequence[Any]:
    """Like `members`, as plain columns (for downloads: no objects per row)."""
    k = CurrentClassification
    statement = (
        select(
            Customer.id,
            Customer.external_id.label("customer_id"),
            Customer.name,
            Customer.country,
            Customer.customer_type,
            k.tier,
            k.stage,
            k.tier_score,
            k.churn_probability,
            k.orders,
            k.revenue,
            k.strategy,
        )
        .outerjoin(k, k.customer_id == Customer.id)
        .where(condition)
        .order_by(Customer.id)
        .limit(limit + 1)
    )
    if after is not None:
        statement = statement.where(Customer.id > after)
    return (await session.execute(statement)).all()


async def count_members(session: AsyncSession, *, condition: ColumnElement[bool]) -> int:
    k = CurrentClassification
    statement = (
        select(func.count())
        .select_from(Customer)
        .outerjoin(k, k.customer_id == Customer.id)
        .where(condition)
    )
    return int((await session.execute(statement)).scalar_one())


# -- the work list ---------------------------------------------------------------------


async def strategy_counts(session: AsyncSession) -> dict[str, int]:
    k = CurrentClassification
    rows = (await session.execute(select(k.strategy, func.count()).group_by(k.strategy))).all()
    return {strategy: int(n) for strategy, n in rows}


_DUE = """
SELECT k.customer_id, k.tier, k.stage, k.tier_score, k.churn_probability, k.revenue,
       c.external_id, c.name, c.country, contact.last_contact
  FROM classifications k
  JOIN customers c ON c.id = k.customer_id
  CROSS JOIN LATERAL (
        SELECT max(e.occurred_at) AS last_contact
          FROM events e
         WHERE e.customer_id = k.customer_id AND e.type IN ('inquiry', 'interaction')
           AND e.occurred_at <= :now) contact
 WHERE k.strategy = :strategy
   AND (contact.last_contact IS NULL OR contact.last_contact < :due_before)
   AND (CAST(:after_score AS float8) IS NULL
        OR k.tier_score < :after_score
        OR (k.tier_score = :after_score AND k.customer_id > :after_id))
 ORDER BY k.tier_score DESC, k.customer_id
 LIMIT :limit
"""


async def due_for_contact(
    session: AsyncSession,
    *,
    strategy: str,
    due_before: datetime,
    now: datetime,
    after: tuple[float, int] | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Customers of one strategy with no contact since `due_before`, most valuable first.

    One level, so the LIMIT reaches the scan: it walks (strategy, tier_score DESC,
    customer_id) and looks up each candidate's latest contact on the events index, so
    the cost follows the page, not the size of the strategy.
    """
    params = {
        "strategy": strategy,
        "due_before": due_before,
        "now": now,
        "after_score": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit + 1,
    }
    return (await session.execute(text(_DUE), params)).all()


# -- one customer ---------------------------------------------------------------------


async def customer(
    session: AsyncSession, *, external_id: str
) -> Row[Customer, CurrentClassification] | None:
    statement = (
        select(Customer, CurrentClassification)
        .outerjoin(CurrentClassification, CurrentClassification.customer_id == Customer.id)
        .where(Customer.external_id == external_id)
    )
    return (await session.execute(statement)).first()


async def recent_events(session: AsyncSession, *, customer_id: int, limit: int) -> Sequence[Event]:
    statement = (
        select(Event)
        .where(Event.customer_id == customer_id)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(limit)
    )
    return (await session.execute(statement)).scalars().all()
