"""The dashboard's population figures and moves ledger, computed once when the service
starts, so that the first person to open a page on a big installation does not wait for
the pass over every stored classification (about a second at a million customers)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.observability import log
from app.dashboard import flows, service

# Let the service answer its first requests (readiness checks) before the pass.
START_DELAY_SECONDS = 1.0


async def warm_once(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        await service.population(session)
        start = datetime.now(UTC) - timedelta(days=max(service.WINDOWS))
        await flows.since(session, since=start)


async def warm(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Run once; a failure is logged, and the first view computes what it needs."""
    await asyncio.sleep(START_DELAY_SECONDS)
    try:
        await warm_once(sessionmaker)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("dashboard warm-up failed", exc_type=type(exc).__name__)
