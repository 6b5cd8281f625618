from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.core.auth import ReadAccess, WriteAccess
from app.core.openapi import AUTHED, problems
from app.core.pagination import Page
from app.core.paging_params import CursorQuery, LimitQuery
from app.core.session_deps import ReadSessionDep, SessionDep
from app.customers.schemas import CustomerRead
from app.segments import service
from app.segments.schemas import Overview, SegmentCreate, SegmentRead, SegmentWrite

router = APIRouter(prefix="/v1/segments", tags=["segments"])

Key = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="A custom segment's key")]
MemberKey = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9_.*-]{1,64}$",
        description="A custom segment's key, or a built-in tier x stage cell: "
        "`high.at_risk`, `high.*`, `*.churned`",
        examples=["high.at_risk"],
    ),
]


@router.get(
    "/overview",
    response_model=Overview,
    summary="Customers and revenue per tier x stage (from the stored classifications)",
    responses=problems(*AUTHED),
)
async def get_overview(session: ReadSessionDep, _: ReadAccess) -> Overview:
    return await service.overview(session)


@router.get(
    "/{key}/customers",
    response_model=Page[CustomerRead],
    summary="Members of a segment",
    responses=problems(*AUTHED, 404),
)
async def list_members(
    key: MemberKey,
    session: ReadSessionDep,
    _: ReadAccess,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[CustomerRead]:
    return await service.members(session, key=key, cursor=cursor, limit=limit)


@router.post(
    "",
    response_model=SegmentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Define a segment: a named rule over customer fields and metrics",
    responses=problems(*AUTHED, 409, 413, 415),
)
async def create_segment(body: SegmentCreate, session: SessionDep, _: WriteAccess) -> SegmentRead:
    return await service.create(session, data=body)


@router.get(
    "",
    response_model=Page[SegmentRead],
    summary="Customer-defined segments",
    responses=problems(*AUTHED),
)
async def list_segments(
    session: ReadSessionDep, _: ReadAccess, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> Page[SegmentRead]:
    return await service.list_segments(session, cursor=cursor, limit=limit)


@router.get(
    "/{key}", response_model=SegmentRead, summary="A segment", responses=problems(*AUTHED, 404)
)
async def get_segment(key: Key, session: ReadSessionDep, _: ReadAccess) -> SegmentRead:
    return await service.get(session, key=key)


@router.put(
    "/{key}",
    response_model=SegmentRead,
    summary="Edit a segment",
    responses=problems(*AUTHED, 404, 413, 415),
)
async def put_segment(
    key: Key, body: SegmentWrite, session: SessionDep, _: WriteAccess
) -> SegmentRead:
    return await service.replace(session, key=key, data=body)


@router.delete(
    "/{key}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a segment",
    responses=problems(*AUTHED, 404),
)
async def delete_segment(key: Key, session: SessionDep, _: WriteAccess) -> Response:
    await service.delete(session, key=key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
