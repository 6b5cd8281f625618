"""SQL for policy versions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Row, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.policies.models import Policy

# One writer at a time picks the next version number.
_POLICY_LOCK = 4_170_002


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
    await session.execute(text(f"SELECT pg_advisory_xact_lock({_POLICY_LOCK})"))
    current = await latest_version(session)
    version = (current or 0) + 1
    await session.execute(insert(Policy).values(version=version, document=document))
    return version


async def currencies_in_use(session: AsyncSession) -> set[str]:
    result = await session.execute(
        text("SELECT DISTINCT currency FROM events WHERE currency IS NOT NULL")
    )
    return {row[0] for row in result}


async def rebase_amounts(session: AsyncSession, *, rates: dict[str, Decimal]) -> None:
    """Re-express every stored amount in the (new) base currency."""
    if not rates:
        return
    await session.execute(
        text(
            """
            UPDATE events e
               SET amount_base = e.amount * r.rate,
                   margin_base = e.margin * r.rate
              FROM unnest(CAST(:currencies AS text[]), CAST(:rates AS numeric[]))
                   AS r(currency, rate)
             WHERE e.currency = r.currency
               AND e.amount_base IS DISTINCT FROM e.amount * r.rate
            """
        ),
        {"currencies": list(rates), "rates": list(rates.values())},
    )
