"""Jobs as the API sees them: create (with its first queue task), read, list, cancel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import Page, decode_cursor, encode_cursor
from app.core.problems import Conflict, NotFound
from app.jobs import queue
from app.jobs.models import Job
from app.jobs.schemas import JobRead, Progress

PREFIX = "job_"
ACTIVE = ("queued", "running")


def public_id(job_id: int) -> str:
    return f"{PREFIX}{job_id}"


def internal_id(text: str) -> int | None:
    digits = text.removeprefix(PREFIX)
    if text.startswith(PREFIX) and digits.isascii() and digits.isdigit() and len(digits) < 19:
        return int(digits)
    return None


def to_read(job: Job) -> JobRead:
    return JobRead(
        job_id=public_id(job.id),
        kind=job.kind,
        state=job.state,
        progress=Progress(done=job.done, total=job.total),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        result=job.result,
        error=job.error,
        as_of=job.as_of or job.requested_as_of,
        schedule=job.schedule_slot,
    )


async def start(
    session: AsyncSession,
    *,
    kind: str,
    as_of: datetime | None,
    schedule_slot: str | None = None,
) -> Job | None:
    """Insert the job and its planning task, committed together.

    With a schedule slot, a second start for the same slot inserts nothing (None): the
    unique key is what lets exactly one of several processes run a scheduled job.
    """
    values: dict[str, Any] = {"kind": kind, "requested_as_of": as_of}
    statement = insert(Job).values(**values, schedule_slot=schedule_slot)
    if schedule_slot is not None:
        statement = statement.on_conflict_do_nothing(index_elements=[Job.schedule_slot])
    job_id = (await session.execute(statement.returning(Job.id))).scalar_one_or_none()
    if job_id is None:
        await session.rollback()
        return None
    await queue.enqueue(session, queue.PLAN, [{"job": job_id}])
    await session.commit()
    job = await session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job


async def get(session: AsyncSession, *, job_id: str) -> JobRead:
    key = internal_id(job_id)
    job = await session.get(Job, key) if key is not None else None
    if job is None:
        raise NotFound(f"No job '{job_id}'")
    return to_read(job)


async def list_jobs(session: AsyncSession, *, cursor: str | None, limit: int) -> Page[JobRead]:
    """Newest first; the cursor is the id the next page starts below."""
    before = decode_cursor(cursor)
    statement = select(Job).order_by(Job.id.desc()).limit(limit + 1)
    if before is not None:
        statement = statement.where(Job.id < before)
    rows: Sequence[Job] = (await session.execute(statement)).scalars().all()
    items = [to_read(j) for j in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return Page[JobRead](items=items, next_cursor=next_cursor)


async def cancel(session: AsyncSession, *, job_id: str) -> JobRead:
    """Queued or running: cancelled now (tasks not yet run do nothing); finished: 409."""
    key = internal_id(job_id)
    job = await session.get(Job, key) if key is not None else None
    if job is None:
        raise NotFound(f"No job '{job_id}'")
    cancelled = (
        await session.execute(
            update(Job)
            .where(Job.id == job.id, Job.state.in_(ACTIVE))
            .values(state="cancelled", finished_at=datetime.now(UTC))
            .returning(Job.id)
        )
    ).scalar_one_or_none()
    await session.commit()
    await session.refresh(job)
    if cancelled is None:
        raise Conflict(f"Job '{job_id}' has already finished ({job.state})")
    return to_read(job)
