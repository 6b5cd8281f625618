"""Re-classify customers whose events arrived, in batches, soon after they arrive.

A trigger on `events` appends the customers of every insert to `dirty_customers`
(append-only, so ingestion never waits for this). One process at a time (an advisory
lock) takes a batch, re-classifies it as of now, tracks segment membership and deletes
the marks it took, all in one transaction: a crash leaves the marks for the next round.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.classification import recompute
from app.core.db import raw_connection
from app.jobs.metrics import INCREMENTAL_CUSTOMERS
from app.notifications import segments

LOCK = 4_170_006


async def run_once(sessionmaker: async_sessionmaker[AsyncSession], *, batch: int) -> int:
    """One batch; the number of customers re-classified (0: nothing to do or busy)."""
    as_of = datetime.now(UTC)
    async with sessionmaker() as session:
        # A population model fitted now commits on its own; fit it before taking locks.
        await recompute.plan(session, as_of=as_of)
        await session.commit()
        conn = await raw_connection(session)
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK):
            return 0
        marks = await conn.fetch(
            "SELECT id, customer_id FROM dirty_customers ORDER BY id LIMIT $1 "
            "FOR UPDATE SKIP LOCKED",
            batch,
        )
        if not marks:
            return 0
        ids = sorted({int(m["customer_id"]) for m in marks})
        await recompute.run_customers(session, ids=ids, as_of=as_of)
        await segments.track(session, segments.Scope(ids=tuple(ids)))
        await conn.execute(
            "DELETE FROM dirty_customers WHERE id = ANY($1::bigint[])", [m["id"] for m in marks]
        )
        await session.commit()
    INCREMENTAL_CUSTOMERS.inc(len(ids))
    return len(ids)


async def backlog(session: AsyncSession) -> int:
    conn = await raw_connection(session)
    return int(await conn.fetchval("SELECT count(DISTINCT customer_id) FROM dirty_customers"))
