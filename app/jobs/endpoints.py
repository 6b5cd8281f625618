from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.core.auth import AdminAccess, ReadAccess
from app.core.openapi import AUTHED, problems
from app.core.pagination import Page
from app.core.paging_params import CursorQuery, LimitQuery
from app.core.session_deps import SessionDep
from app.jobs import service
from app.jobs.schemas import JobCreate, JobRead

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JobId = Annotated[str, Path(max_length=40, description="A job's id", examples=["job_42"])]


@router.post(
    "",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a job (recompute every customer's stored classification)",
    description="Answers at once; follow the job at its `Location`. Any service or worker "
    "process runs it, split into id ranges that run in parallel.",
    responses=problems(*AUTHED, 413, 415),
)
async def create_job(
    body: JobCreate, session: SessionDep, _: AdminAccess, response: Response
) -> JobRead:
    job = await service.start(session, kind=body.kind, as_of=body.as_of)
    assert job is not None
    response.headers["Location"] = f"/v1/jobs/{service.public_id(job.id)}"
    return service.to_read(job)


@router.get(
    "",
    response_model=Page[JobRead],
    summary="List jobs, the newest first",
    responses=problems(*AUTHED),
)
async def list_jobs(
    session: SessionDep, _: ReadAccess, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> Page[JobRead]:
    return await service.list_jobs(session, cursor=cursor, limit=limit)


@router.get(
    "/{job_id}",
    response_model=JobRead,
    summary="A job's state, progress, result or error",
    responses=problems(*AUTHED, 404),
)
async def get_job(job_id: JobId, session: SessionDep, _: ReadAccess) -> JobRead:
    return await service.get(session, job_id=job_id)


@router.delete(
    "/{job_id}",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel a queued or running job",
    description="Ranges already committed stay; the rest are not run. A finished job: 409.",
    responses=problems(*AUTHED, 404, 409),
)
async def cancel_job(job_id: JobId, session: SessionDep, _: AdminAccess) -> JobRead:
    return await service.cancel(session, job_id=job_id)
