from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from app.changes import service
from app.changes.schemas import ChangeRead
from app.core.auth import ReadAccess
from app.core.openapi import AUTHED, problems
from app.core.pagination import Page
from app.core.paging_params import CursorQuery, LimitQuery
from app.core.session_deps import SessionDep
from app.core.types import ID_PATTERN, parse_time_any

router = APIRouter(tags=["classification"])

TIER = "^(high|mid|low)$"
STAGE = "^(prospect|new|returning|loyal|at_risk|churned)$"


def _time(value: Any) -> Any:
    return parse_time_any(value) if isinstance(value, str) else value


Time = Annotated[
    datetime | None, BeforeValidator(_time), Query(description="RFC 3339 time with an offset")
]


@router.get(
    "/v1/classification-changes",
    response_model=Page[ChangeRead],
    response_model_by_alias=True,
    summary="Stored tier and stage changes, oldest first",
    description="Every change of a customer's stored tier or stage, filtered by the time "
    "classified (`since` inclusive, `until` exclusive), the customer and the tiers or "
    "stages moved from and to: who moved from mid to high this week is "
    "`?since=…&from_tier=mid&to_tier=high`.",
    responses=problems(*AUTHED),
)
async def list_changes(
    session: SessionDep,
    _: ReadAccess,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    since: Time = None,
    until: Time = None,
    customer_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    from_tier: Annotated[str | None, Query(pattern=TIER)] = None,
    to_tier: Annotated[str | None, Query(pattern=TIER)] = None,
    from_stage: Annotated[str | None, Query(pattern=STAGE)] = None,
    to_stage: Annotated[str | None, Query(pattern=STAGE)] = None,
) -> Page[ChangeRead]:
    filters = service.ChangeFilter(
        since=since,
        until=until,
        customer_id=customer_id,
        from_tier=from_tier,
        to_tier=to_tier,
        from_stage=from_stage,
        to_stage=to_stage,
    )
    return await service.list_changes(session, filters=filters, cursor=cursor, limit=limit)
