"""The dashboard's population figures, moves ledger and segment sizes, computed once
when the service starts, so that the first person to open a page on a big installation
does not wait for a pass over every stored classification (about a second at a million
customers)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.observability import log
from app.dashboard import flows, service

# Let the service answer its first requests (readiness checks) before the pass.
START_DELAY_SECONDS = 1.0
# Each customer-defined segment's size is a pass of its own; the first ones are warmed.
SEGMENTS_WARMED = 20


async def warm_once(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        await service.population(session)
        start = datetime.now(UTC) - timedelta(days=max(service.WINDOWS))
        await flows.since(session, since=start)
        await service.warm_segment_sizes(session, limit=SEGMENTS_WARMED)


async def warm(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Run once; a failure is logged, and the first view computes what it needs."""
    await asyncio.sleep(START_DELAY_SECONDS)
    try:
        await warm_once(sessionmaker)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("dashboard warm-up failed", exc_type=type(exc).__name__)
