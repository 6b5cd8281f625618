"""Re-classify customers whose events arrived, in batches, soon after they arrive.

A trigger on `events` appends the customers of every insert to `dirty_customers`
(append-only, so ingestion never waits for this). One process at a time (an advisory
lock) takes a batch, re-classifies it as of now, tracks segment membership and deletes
the marks it took, all in one transaction: a crash leaves the marks for the next round.

Under sustained ingest the worker waits for a pause (`settle`) before it starts, but
never longer than `max_delay` after the oldest mark: one round then covers every mark of
its customers, so a customer whose events came in many batches is classified once.
Events that arrive late delete the day's population fit; during such a backfill a round
keeps the model it knew for up to `reuse_fit_for` seconds rather than refitting every round.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.classification import recompute
from app.core.db import raw_connection
from app.customers import erasure_gate
from app.jobs.metrics import INCREMENTAL_CUSTOMERS
from app.notifications import segments

LOCK = 4_170_006

# Two index probes on the primary key, however long the backlog; no row: nothing marked.
_DUE = """
SELECT newest.marked_at <= clock_timestamp() - make_interval(secs => $1)
    OR oldest.marked_at <= clock_timestamp() - make_interval(secs => $2)
  FROM (SELECT marked_at FROM dirty_customers ORDER BY id DESC LIMIT 1) AS newest,
       (SELECT marked_at FROM dirty_customers ORDER BY id LIMIT 1) AS oldest
"""

# The customers of the oldest `batch` marks, with every mark of theirs visible now (the
# events behind a visible mark are committed, so the read that follows sees them). Marks
# committed after this statement are left for the next round.
_TAKE = """
WITH picked AS (
    SELECT DISTINCT customer_id
      FROM (SELECT customer_id FROM dirty_customers ORDER BY id LIMIT $1) AS oldest
)
SELECT d.id, d.customer_id
  FROM dirty_customers d JOIN picked USING (customer_id)
   FOR UPDATE OF d SKIP LOCKED
"""


async def due(session: AsyncSession, *, settle: float, max_delay: float) -> bool:
    """Whether marks wait and ingest has paused for `settle` seconds, or the oldest mark
    has waited `max_delay` seconds."""
    conn = await raw_connection(session)
    return bool(await conn.fetchval(_DUE, settle, max_delay))


async def run_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    batch: int,
    settle: float = 0.0,
    max_delay: float = 0.0,
    reuse_fit_for: float = 0.0,
) -> int:
    """One batch; the number of customers re-classified (0: nothing due or busy)."""
    as_of = datetime.now(UTC)
    async with sessionmaker() as session:
        is_due = await due(session, settle=settle, max_delay=max_delay)
        await session.commit()
        if not is_due:
            return 0
        # A population model fitted now commits on its own; fit it before taking locks.
        await recompute.prepare_model(session, as_of=as_of, reuse_fit_for=reuse_fit_for)
        await session.commit()
        conn = await raw_connection(session)
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK):
            return 0
        # Through the gate before the marks are locked: an erasure deletes marks too.
        await erasure_gate.enter(conn)
        marks = await conn.fetch(_TAKE, batch)
        if not marks:
            return 0
        ids = sorted({int(m["customer_id"]) for m in marks})
        await recompute.run_customers(session, ids=ids, as_of=as_of, reuse_fit_for=reuse_fit_for)
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
