from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.core.auth import ReadAccess, WriteAccess
from app.core.db import SessionDep
from app.core.openapi import AUTHED, problems
from app.core.pagination import CursorQuery, LimitQuery, Page
from app.core.types import ID_PATTERN
from app.events import service
from app.events.schemas import EventBatch, EventRead, IngestResult

router = APIRouter(tags=["events"])


@router.post(
    "/v1/events",
    response_model=IngestResult,
    summary="Ingest 1-1000 events, all or nothing, idempotent on event_id",
    description="If any item is invalid the answer is 422 naming every bad item (with its "
    "`index`) and nothing is stored. Events whose `event_id` is already stored change "
    "nothing and count as duplicates. Unknown customers are created on the fly.",
    responses=problems(*AUTHED, 413, 415),
)
async def post_events(body: EventBatch, session: SessionDep, _: WriteAccess) -> IngestResult:
    return await service.ingest(session, events=body.events, source="api")


@router.get(
    "/v1/customers/{customer_id}/events",
    response_model=Page[EventRead],
    summary="A customer's events, newest first",
    responses=problems(*AUTHED, 404),
)
async def list_events(
    customer_id: Annotated[str, Path(pattern=ID_PATTERN)],
    session: SessionDep,
    _: ReadAccess,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[EventRead]:
    return await service.list_for_customer(
        session, customer_id=customer_id, cursor=cursor, limit=limit
    )
