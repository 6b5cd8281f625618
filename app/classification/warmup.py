"""Keep today's population model fitted, so no request waits for a fit at midnight."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.classification import population
from app.classification.service import engine_policy
from app.core.observability import log
from app.policies.service import current_policy

# Re-check this often: a new policy version or a backfill also needs a fresh fit.
CHECK_EVERY = timedelta(minutes=10)


async def warm_once(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        active = await current_policy(session)
        await population.model_for(
            session,
            version=active.version,
            policy=engine_policy(active),
            as_of=datetime.now(UTC),
            horizon_days=active.document.horizon_days,
        )
        await session.commit()


async def keep_warm(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Run until cancelled; failures are logged and retried, never raised."""
    while True:
        try:
            await warm_once(sessionmaker)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("population model warm-up failed", exc_type=type(exc).__name__)
        now = datetime.now(UTC)
        next_day = population.cutoff_for(now) + timedelta(days=1, seconds=5)
        await asyncio.sleep(min(CHECK_EVERY, next_day - now).total_seconds())
