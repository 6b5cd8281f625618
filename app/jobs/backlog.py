"""Refresh the backlog gauges (queue depth, jobs, dirty customers, outbox) from the database."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import incremental, queue
from app.jobs.metrics import DIRTY_BACKLOG, JOBS_ACTIVE, OUTBOX_BACKLOG, OUTBOX_OLDEST, QUEUE_DEPTH
from app.jobs.models import Job
from app.notifications import delivery


async def refresh(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        depth = await queue.depth(session)
        for entrypoint in queue.ENTRYPOINTS:
            for status in ("queued", "picked"):
                QUEUE_DEPTH.labels(entrypoint, status).set(depth.get((entrypoint, status), 0))
        states = dict(
            (
                await session.execute(
                    select(Job.state, func.count())
                    .where(Job.state.in_(("queued", "running")))
                    .group_by(Job.state)
                )
            ).all()
        )
        for state in ("queued", "running"):
            JOBS_ACTIVE.labels(state).set(states.get(state, 0))
        DIRTY_BACKLOG.set(await incremental.backlog(session))
        pending, oldest = await delivery.backlog(session)
        OUTBOX_BACKLOG.set(pending)
        OUTBOX_OLDEST.set(oldest)
