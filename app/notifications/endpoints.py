from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from app.core.auth import AdminAccess
from app.core.openapi import AUTHED, problems
from app.core.pagination import Page
from app.core.paging_params import CursorQuery, LimitQuery
from app.core.session_deps import SessionDep
from app.notifications import service
from app.notifications.schemas import (
    AttemptRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
)

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["notifications"])

EndpointId = Annotated[str, Path(max_length=64, description="An endpoint's id")]


@router.post(
    "",
    response_model=EndpointCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Register a CRM endpoint for change notifications",
    description="Notifications are signed per Standard Webhooks with the `secret` in this "
    "answer (shown only once). URLs on loopback, private, link-local or metadata addresses "
    "are refused.",
    responses=problems(*AUTHED, 413, 415),
)
async def create_endpoint(
    body: EndpointCreate, request: Request, session: SessionDep, _: AdminAccess
) -> EndpointCreated:
    return await service.create(session, data=body, settings=request.app.state.settings)


@router.get(
    "", response_model=Page[EndpointRead], summary="List endpoints", responses=problems(*AUTHED)
)
async def list_endpoints(
    session: SessionDep, _: AdminAccess, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> Page[EndpointRead]:
    return await service.list_endpoints(session, cursor=cursor, limit=limit)


@router.get(
    "/{endpoint_id}",
    response_model=EndpointRead,
    summary="Read an endpoint",
    responses=problems(*AUTHED, 404),
)
async def get_endpoint(
    endpoint_id: EndpointId, session: SessionDep, _: AdminAccess
) -> EndpointRead:
    return await service.get(session, endpoint_id=endpoint_id)


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointRead,
    summary="Change an endpoint's URL, events or description",
    responses=problems(*AUTHED, 404, 413, 415),
)
async def patch_endpoint(
    endpoint_id: EndpointId,
    body: EndpointUpdate,
    request: Request,
    session: SessionDep,
    _: AdminAccess,
) -> EndpointRead:
    return await service.change(
        session, endpoint_id=endpoint_id, data=body, settings=request.app.state.settings
    )


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an endpoint (pending deliveries to it are dropped)",
    responses=problems(*AUTHED, 404),
)
async def delete_endpoint(endpoint_id: EndpointId, session: SessionDep, _: AdminAccess) -> Response:
    await service.remove(session, endpoint_id=endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=Page[AttemptRead],
    summary="The endpoint's delivery log, newest attempt first",
    responses=problems(*AUTHED, 404),
)
async def list_deliveries(
    endpoint_id: EndpointId,
    session: SessionDep,
    _: AdminAccess,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[AttemptRead]:
    return await service.attempts(session, endpoint_id=endpoint_id, cursor=cursor, limit=limit)
