from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from app.classification import service
from app.classification.labels import language
from app.classification.schemas import BatchRequest, BatchResponse, ClassificationOut
from app.core.auth import ReadAccess
from app.core.openapi import AUTHED, problems
from app.core.session_deps import ReadSessionDep
from app.core.types import ID_PATTERN, PastTimestamp

router = APIRouter(tags=["classification"])
_ONE = ClassificationOut.__pydantic_serializer__

AcceptLanguage = Annotated[
    str | None,
    Header(description="`en` (default) or `zh-CN`: the language of labels, actions and reasons"),
]


@router.get(
    "/v1/customers/{customer_id}/classification",
    response_model=ClassificationOut,
    summary="Classify one customer as of a time",
    description="Tier, lifecycle stage, segments, strategy, metrics and reasons, using only "
    "events at or before `as_of` (default: now). The same data and `as_of` give the same "
    "answer.",
    responses=problems(*AUTHED, 404),
)
async def classify_one(
    customer_id: Annotated[str, Path(pattern=ID_PATTERN)],
    _: ReadAccess,
    session: ReadSessionDep,
    as_of: Annotated[PastTimestamp | None, Query(description="RFC 3339 time")] = None,
    horizon_days: Annotated[int | None, Query(ge=1, le=1095)] = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    # The key is checked before a connection is taken; the answer is the model's JSON,
    # as FastAPI would write it, without validating the built model a second time.
    items = await service.classify_customers(
        session,
        customer_ids=[customer_id],
        as_of=as_of,
        horizon_days=horizon_days,
        lang=language(accept_language),
        single=True,
    )
    return Response(_ONE.to_json(items[0]), media_type="application/json")


@router.post(
    "/v1/classifications/batch",
    response_model=BatchResponse,
    summary="Classify up to 1000 customers as of a time",
    description="Items come back in the order of `customer_ids`. An unknown id is a 422 "
    "naming it; nothing partial is returned.",
    responses=problems(*AUTHED, 413, 415),
)
async def classify_batch(
    body: BatchRequest,
    _: ReadAccess,
    session: ReadSessionDep,
    accept_language: AcceptLanguage = None,
) -> BatchResponse:
    items = await service.classify_customers(
        session,
        customer_ids=body.customer_ids,
        as_of=body.as_of,
        horizon_days=body.horizon_days,
        lang=language(accept_language),
    )
    return BatchResponse(items=items)
