"""SQL behind the dashboard's pages: every statement reads stored classifications and
their changes through an index (see migration 0007), never the events of a population."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, func, insert, select, text
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

# Every population-wide figure of the overview and the work list in one grouped pass,
# an index-only scan of `ix_classifications_cell` (migration 0008): a few hundred
# groups, summed up per figure by the caller. The bin (of HISTOGRAM_BINS) is written out
# as migration 0008's statistics name it, so the planner knows how few groups there are.
_POPULATION = """
SELECT tier, stage, segment_geography AS geography, segment_customer_type AS customer_type,
       strategy, least(width_bucket(churn_probability, 0, 1, 20), 20) AS bin,
       count(*) AS customers, coalesce(sum(revenue), 0) AS revenue,
       max(as_of) AS as_of, max(policy_version) AS policy_version
  FROM classifications
 GROUP BY 1, 2, 3, 4, 5, 6
"""


async def population(session: AsyncSession) -> tuple[Sequence[Row[Any]], int]:
    """The grouped stored classifications, and how many customers there are."""
    # Compiling this one pass to machine code costs more than it saves (a fifth of a
    # second on a million rows). And the planner, costing index pages as random reads,
    # prefers the table (380 MB on a million rows) to the index holding every column
    # the pass reads (120 MB): a quarter less time on a warm cache, far less on a cold.
    for setting in ("SET LOCAL jit = off", "SET LOCAL enable_seqscan = off"):
        await session.execute(text(setting))
    groups = (await session.execute(text(_POPULATION))).all()
    for setting in ("RESET jit", "RESET enable_seqscan"):
        await session.execute(text(setting))
    customers = (await session.execute(select(func.count()).select_from(Customer))).scalar_one()
    return groups, int(customers)


# -- movements and sizes over time ----------------------------------------------------


Flow = Row[datetime, str | None, str | None, str, str, int]


@dataclass(frozen=True, slots=True)
class ChangeMark:
    """The oldest and newest stored change, by id (None and 0: there are none)."""

    first_id: int | None
    first_changed_at: datetime | None
    last_id: int
    last_changed_at: datetime | None


_MARK = """
SELECT f.id AS first_id, f.changed_at AS first_changed_at,
       coalesce(l.id, 0) AS last_id, l.changed_at AS last_changed_at
  FROM (SELECT 1) one
  LEFT JOIN LATERAL (SELECT id, changed_at FROM classification_changes
                      ORDER BY id LIMIT 1) f ON true
  LEFT JOIN LATERAL (SELECT id, changed_at FROM classification_changes
                      ORDER BY id DESC LIMIT 1) l ON true
"""


async def change_mark(session: AsyncSession) -> ChangeMark:
    row = (await session.execute(text(_MARK))).one()
    return ChangeMark(row.first_id, row.first_changed_at, int(row.last_id), row.last_changed_at)


async def same_mark(session: AsyncSession, mark: ChangeMark) -> bool:
    """Whether the oldest change and the change at `mark.last_id` are still those seen."""
    c = ClassificationChange
    first = (await session.execute(select(c.id, c.changed_at).order_by(c.id).limit(1))).first()
    if (first is None) != (mark.first_id is None):
        return False
    if first is not None and (first.id, first.changed_at) != (mark.first_id, mark.first_changed_at):
        return False
    if mark.last_id == 0:
        return True
    last = (await session.execute(select(c.changed_at).where(c.id == mark.last_id))).first()
    return last is not None and last.changed_at == mark.last_changed_at


async def day_flows(
    session: AsyncSession,
    *,
    after: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    after_id: int | None = None,
    up_to_id: int | None = None,
) -> Sequence[Flow]:
    """(UTC day, from tier, from stage, to tier, to stage, count) of the changes with
    `after` < as_of, `start` <= as_of < `end`, `after_id` < id <= `up_to_id` (each bound
    optional)."""
    c = ClassificationChange
    day = func.date_trunc("day", c.as_of, "UTC").label("day")
    conditions: list[ColumnElement[bool]] = []
    if after is not None:
        conditions.append(c.as_of > after)
    if start is not None:
        conditions.append(c.as_of >= start)
    if end is not None:
        conditions.append(c.as_of < end)
    if after_id is not None:
        conditions.append(c.id > after_id)
    if up_to_id is not None:
        conditions.append(c.id <= up_to_id)
    statement = (
        select(day, c.from_tier, c.from_stage, c.to_tier, c.to_stage, func.count())
        .where(*conditions)
        .group_by(day, c.from_tier, c.from_stage, c.to_tier, c.to_stage)
    )
    return (await session.execute(statement)).all()


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
        .outerjoin(k, _joined(k, after))
        .where(condition)
        .order_by(Customer.id)
        .limit(limit + 1)
    )
    if after is not None:
        statement = statement.where(Customer.id > after)
    return (await session.execute(statement)).all()


def _joined(k: type[CurrentClassification], after: int | None) -> ColumnElement[bool]:
    """The join, with the keyset position on the classifications' side as well: both
    scans then start at the position, not at the first customer (a deep page, or the
    CSV's hundredth batch, would otherwise walk every classification before it)."""
    on = k.customer_id == Customer.id
    return on if after is None else and_(on, k.customer_id > after)


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
        .outerjoin(k, _joined(k, after))
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


_DUE = """
SELECT s.code AS strategy, d.*
  FROM unnest(CAST(:codes AS text[]), CAST(:due_before AS timestamptz[])) AS s(code, due_before)
 CROSS JOIN LATERAL (
       SELECT k.customer_id, k.tier, k.stage, k.tier_score, k.churn_probability, k.revenue,
              c.external_id, c.name, c.country, contact.last_contact
         FROM classifications k
         JOIN customers c ON c.id = k.customer_id
        CROSS JOIN LATERAL (
              SELECT max(e.occurred_at) AS last_contact
                FROM events e
               WHERE e.customer_id = k.customer_id AND e.type IN ('inquiry', 'interaction')
                 AND e.occurred_at <= :now) contact
        WHERE k.strategy = s.code
          AND (contact.last_contact IS NULL OR contact.last_contact < s.due_before)
          AND (CAST(:after_score AS float8) IS NULL
               OR k.tier_score < :after_score
               OR (k.tier_score = :after_score AND k.customer_id > :after_id))
        ORDER BY k.tier_score DESC, k.customer_id
        LIMIT :limit) d
"""


async def due_for_contact(
    session: AsyncSession,
    *,
    strategies: Sequence[tuple[str, datetime]],
    now: datetime,
    after: tuple[float, int] | None,
    limit: int,
) -> dict[str, list[Row[Any]]]:
    """Per strategy (code, no contact since), its customers due, most valuable first.

    One statement for every strategy, and one level inside it, so each LIMIT reaches its
    scan: it walks (strategy, tier_score DESC, customer_id) and looks up each candidate's
    latest contact on the events index, so the cost follows the page, not the size of
    the strategy or the population.
    """
    params = {
        "codes": [code for code, _ in strategies],
        "due_before": [due for _, due in strategies],
        "now": now,
        "after_score": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit + 1,
    }
    found: dict[str, list[Row[Any]]] = {code: [] for code, _ in strategies}
    for row in (await session.execute(text(_DUE), params)).all():
        found[row.strategy].append(row)
    for rows in found.values():  # the outer join keeps no order of its own
        rows.sort(key=lambda r: (-r.tier_score, r.customer_id))
    return found


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
