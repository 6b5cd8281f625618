from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from app.core.auth import ReadAccess, WriteAccess
from app.core.openapi import AUTHED, problems
from app.core.pagination import Page
from app.core.paging_params import CursorQuery, LimitQuery
from app.core.session_deps import SessionDep
from app.core.types import ID_PATTERN
from app.events import service
from app.events.schemas import EVENT_EXAMPLE, EventBatch, EventRead, IngestResult, request_body

router = APIRouter(tags=["events"])

CustomerId = Annotated[
    str, Path(pattern=ID_PATTERN, description="The caller's own customer id", examples=["c-1042"])
]


@router.post(
    "/v1/events",
    response_model=IngestResult,
    response_model_exclude_none=True,
    summary="Ingest 1-1000 events, all or nothing, idempotent on event_id",
    description="If any event is invalid the answer is 422 whose `errors` name every bad "
    "field with the event's `index` (e.g. `events[3].amount`), and nothing is stored. An "
    "event whose `event_id` is already stored, or repeats one earlier in the batch, changes "
    "nothing and counts as a duplicate. Unknown customers are created on the fly. Amounts "
    "are kept as sent and also converted to the policy's base currency; a currency without "
    "an exchange rate in the policy is a 422.",
    openapi_extra={"requestBody": request_body(EventBatch, {"events": [EVENT_EXAMPLE]})},
    responses=problems(*AUTHED, 413, 415),
)
async def post_events(request: Request, session: SessionDep, _: WriteAccess) -> IngestResult:
    return await service.ingest_json(session, body=await request.body())


@router.get(
    "/v1/customers/{customer_id}/events",
    response_model=Page[EventRead],
    summary="A customer's events, latest first",
    description="Ordered by `occurred_at`, latest first (events at the same instant: the "
    "one stored last first). Cursor-paginated; 404 for an unknown customer.",
    responses=problems(*AUTHED, 404),
)
async def list_events(
    customer_id: CustomerId,
    session: SessionDep,
    _: ReadAccess,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[EventRead]:
    return await service.list_for_customer(
        session, customer_id=customer_id, cursor=cursor, limit=limit
    )
