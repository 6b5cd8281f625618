"""SQL for policy versions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Row, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import transaction_connection
from app.policies.models import Policy

# Ingestion holds this lock shared for its whole transaction, a policy change holds it
# exclusively: a change waits for batches converted at the old rates to commit (and then
# re-bases them), and a batch that starts during a change waits and uses the new rates.
# Policy changes are serialised by it too, each diffing against the one before.
POLICY_LOCK = 4_170_002


async def lock_shared(session: AsyncSession) -> None:
    await session.execute(text(f"SELECT pg_advisory_xact_lock_shared({POLICY_LOCK})"))


# The same two steps on the driver: they run on every ingest request and webhook delivery.
LOCK_SHARED = f"SELECT pg_advisory_xact_lock_shared({POLICY_LOCK})"
LATEST_VERSION = "SELECT max(version) FROM policies"


async def lock_shared_raw(session: AsyncSession) -> None:
    """The shared policy lock, in one round trip (a simple query: nothing to prepare)."""
    conn = await transaction_connection(session)
    await conn.execute(LOCK_SHARED)


async def lock_shared_latest(session: AsyncSession) -> int | None:
    """The shared policy lock, then the newest version in a statement of its own: its
    snapshot is taken once the lock is held, so a change committed meanwhile is seen."""
    await lock_shared_raw(session)
    conn = await transaction_connection(session)
    version: int | None = await conn.fetchval(LATEST_VERSION)
    return version


async def lock_exclusive(session: AsyncSession) -> None:
    await session.execute(text(f"SELECT pg_advisory_xact_lock({POLICY_LOCK})"))


async def latest_version(session: AsyncSession) -> int | None:
    result = await session.execute(select(Policy.version).order_by(Policy.version.desc()).limit(1))
    return result.scalar_one_or_none()


async def get(session: AsyncSession, *, version: int) -> Row[Any] | None:
    result = await session.execute(
        select(Policy.version, Policy.document, Policy.created_at).where(Policy.version == version)
    )
    return result.first()


async def insert_first(session: AsyncSession, *, document: dict[str, Any]) -> None:
    await session.execute(
        insert(Policy).values(version=1, document=document).on_conflict_do_nothing()
    )


async def insert_next(session: AsyncSession, *, document: dict[str, Any]) -> int:
    """The next version (the caller holds lock_exclusive)."""
    current = await latest_version(session)
    version = (current or 0) + 1
    await session.execute(insert(Policy).values(version=version, document=document))
    return version


async def currencies_in_use(session: AsyncSession) -> dict[str, Decimal]:
    """Each currency stored events use, with the largest amount or margin in it."""
    result = await session.execute(
        text(
            "SELECT currency, max(greatest(abs(amount), abs(coalesce(margin, 0))))"
            " FROM events WHERE currency IS NOT NULL GROUP BY currency"
        )
    )
    return {row[0]: row[1] or Decimal(0) for row in result}


# Every currency in use is re-based, not only those whose rate differs from the previous
# version: rows already right are skipped by the WHERE, and any row converted wrongly
# before is healed. Snapshots summed from the old amounts go in the same statement.
_REBASE = """
WITH rebased AS (
    UPDATE events e
       SET amount_base = e.amount * r.rate,
           margin_base = e.margin * r.rate
      FROM unnest(CAST(:currencies AS text[]), CAST(:rates AS numeric[])) AS r(currency, rate)
     WHERE e.currency = r.currency
       AND (e.amount_base IS DISTINCT FROM round(e.amount * r.rate, 6)
            OR e.margin_base IS DISTINCT FROM round(e.margin * r.rate, 6))
    RETURNING e.customer_id
)
DELETE FROM history_snapshots s WHERE s.customer_id IN (SELECT customer_id FROM rebased)
"""


async def rebase_amounts(session: AsyncSession, *, rates: dict[str, Decimal]) -> None:
    """Re-express every stored amount in the (new) base currency."""
    if not rates:
        return
    await session.execute(text(_REBASE), {"currencies": list(rates), "rates": list(rates.values())})
