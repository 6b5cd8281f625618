"""What a worker does with each queue task of a recompute.

The planning task fits the population model once and splits the id space into ranges,
one queue task each. A range task classifies its customers and, in the same
transaction, marks its range done and adds to the job's counters: a task that runs again
(its worker died after the commit, or two workers picked it) finds the range done and
does nothing, and one that died before the commit left nothing behind.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.classification import recompute
from app.core.db import raw_connection
from app.core.observability import log
from app.core.problems import PROBLEM_BASE, Problem
from app.customers.models import Customer
from app.jobs import queue
from app.jobs.metrics import JOB_DURATION, RANGES_DONE
from app.jobs.models import Job, JobRange
from app.notifications import segments
from app.notifications.json import iso_time


def problem(title: str, detail: str, *, slug: str = "job-failed") -> dict[str, Any]:
    return {"type": PROBLEM_BASE + slug, "title": title, "status": 500, "detail": detail}


def describe(exc: BaseException) -> str:
    """What went wrong, without SQL or a traceback (those go to the log)."""
    if isinstance(exc, Problem):
        return exc.detail
    if isinstance(exc, SQLAlchemyError | asyncpg.PostgresError):
        return f"the database refused the work ({type(exc).__name__})"
    message = str(exc)[:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


async def plan_job(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: int, *, chunk: int = recompute.CHUNK
) -> None:
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
        if job is None or job.state != "queued":
            return  # cancelled before it started, or planned already
        the_plan = await recompute.plan(session, as_of=job.requested_as_of, chunk=chunk)
        total = (await session.execute(select(func.count()).select_from(Customer))).scalar_one()
        started = (
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "queued")
                .values(
                    state="running",
                    started_at=func.now(),
                    as_of=the_plan.as_of,
                    policy_version=the_plan.policy_version,
                    total=total,
                    ranges_left=len(the_plan.ranges),
                )
                .returning(Job.id)
            )
        ).scalar_one_or_none()
        if started is None:
            await session.rollback()
            return
        if the_plan.ranges:
            await session.execute(
                insert(JobRange),
                [{"job_id": job_id, "after": a, "upto": u} for a, u in the_plan.ranges],
            )
            await queue.enqueue(
                session, queue.RANGE, [{"job": job_id, "after": a} for a, _ in the_plan.ranges]
            )
        else:
            await _finish(session, job_id)
        await session.commit()


async def run_range(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: int, after: int
) -> None:
    async with sessionmaker() as session:
        conn = await raw_connection(session)
        row = await conn.fetchrow(
            "SELECT r.upto, r.done, j.state, j.as_of, j.policy_version "
            "FROM job_ranges r JOIN jobs j ON j.id = r.job_id "
            "WHERE r.job_id = $1 AND r.after = $2 FOR UPDATE OF r",
            job_id,
            after,
        )
        if row is None or row["done"] or row["state"] != "running":
            return
        upto = int(row["upto"])
        the_plan = recompute.RecomputePlan(
            as_of=row["as_of"], policy_version=row["policy_version"], ranges=((after, upto),)
        )
        result = await recompute.run_range(session, the_plan, after=after, upto=upto)
        await segments.track(session, segments.Scope(after=after, upto=upto))
        await session.execute(
            update(JobRange)
            .where(JobRange.job_id == job_id, JobRange.after == after)
            .values(done=True)
        )
        left = (
            await session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    done=Job.done + result.customers,
                    tier_changed=Job.tier_changed + result.tier_changed,
                    stage_changed=Job.stage_changed + result.stage_changed,
                    ranges_left=Job.ranges_left - 1,
                )
                .returning(Job.ranges_left)
            )
        ).scalar_one()
        if left == 0:
            await _finish(session, job_id)
        await session.commit()
        RANGES_DONE.inc()


async def _finish(session: AsyncSession, job_id: int) -> None:
    job = await session.get(Job, job_id, populate_existing=True, with_for_update=True)
    if job is None or job.state != "running":
        return  # cancelled meanwhile: the work done stays, the job stays cancelled
    now = datetime.now(UTC)
    started = job.started_at or now
    seconds = max((now - started).total_seconds(), 0.0)
    job.state = "succeeded"
    job.finished_at = now
    job.total = job.done
    job.result = {
        "customers": job.done,
        "seconds": round(seconds, 3),
        "tier_changed": job.tier_changed,
        "stage_changed": job.stage_changed,
        "policy_version": job.policy_version,
        "as_of": iso_time(job.as_of or now),
    }
    JOB_DURATION.labels(job.kind, "succeeded").observe(seconds)


async def fail(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: int, exc: BaseException
) -> None:
    """Record why a job failed; its other tasks then find it finished and do nothing.

    Tried on fresh connections a few times: the failure may have been the connection.
    """
    log.error("job failed", job_id=job_id, error=repr(exc))
    for attempt in range(3):
        try:
            await _record_failure(sessionmaker, job_id, exc)
            return
        except (SQLAlchemyError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if attempt == 2:
                raise


async def _record_failure(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: int, exc: BaseException
) -> None:
    async with sessionmaker() as session:
        try:
            job = await session.get(Job, job_id, with_for_update=True)
            if job is None or job.state not in ("queued", "running"):
                return
            now = datetime.now(UTC)
            job.state = "failed"
            job.finished_at = now
            job.error = problem("Job failed", describe(exc))
            seconds = (now - job.started_at).total_seconds() if job.started_at else 0.0
            await session.commit()
        except BaseException:
            # Never hand a connection in an unknown state back to the pool.
            await session.invalidate()
            raise
    JOB_DURATION.labels(job.kind, "failed").observe(max(seconds, 0.0))
