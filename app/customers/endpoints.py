from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.responses import JSONResponse

from app.core.auth import ReadAccess, WriteAccess
from app.core.openapi import AUTHED, problems
from app.core.pagination import Page
from app.core.paging_params import CursorQuery, LimitQuery
from app.core.session_deps import ReadSessionDep, SessionDep
from app.core.types import ID_PATTERN, TrimmedText, at_most
from app.customers import service
from app.customers.repository import CustomerFilter
from app.customers.schemas import CustomerRead, CustomerUpsert

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CustomerId = Annotated[
    str, Path(pattern=ID_PATTERN, description="The caller's own customer id", examples=["c-1042"])
]


@router.put(
    "/{customer_id}",
    response_model=CustomerRead,
    status_code=status.HTTP_200_OK,
    summary="Create or update a customer",
    description="201 when created, 200 when updated. The body is the stored customer only "
    "for a key that also has the `read` scope; a write-only key gets the same status with "
    "an empty body (it may write personal data, not read it back). An erased customer id "
    "is a 409 unless `restore=true` says they came back and consented.",
    responses={
        201: {"description": "Created", "model": CustomerRead},
        **problems(*AUTHED, 409, 413, 415),
    },
)
async def put_customer(
    customer_id: CustomerId,
    body: CustomerUpsert,
    session: SessionDep,
    principal: WriteAccess,
    restore: Annotated[
        bool, Query(description="Lift an erasure of this id: the customer came back")
    ] = False,
) -> Response | CustomerRead:
    customer, created = await service.upsert(
        session, customer_id=customer_id, data=body, restore=restore
    )
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    if "read" not in principal.scopes:
        return Response(status_code=code)
    return JSONResponse(customer.model_dump(mode="json"), status_code=code)


@router.get(
    "/{customer_id}",
    response_model=CustomerRead,
    summary="Read a customer",
    responses=problems(*AUTHED, 404),
)
async def get_customer(customer_id: CustomerId, _: ReadAccess, session: ReadSessionDep) -> Response:
    # The key is checked before a connection is taken: unauthenticated calls use none.
    content = await service.get_json(session, customer_id=customer_id)
    return Response(content, media_type="application/json")


@router.get(
    "",
    response_model=Page[CustomerRead],
    summary="List customers",
    responses=problems(*AUTHED),
)
async def list_customers(
    session: ReadSessionDep,
    _: ReadAccess,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    country: Annotated[str | None, Query(pattern="^[A-Za-z]{2}$")] = None,
    customer_type: Annotated[str | None, Query(pattern="^(individual|business)$")] = None,
    role: Annotated[str | None, Query(pattern="^(end_customer|distributor)$")] = None,
    # The length is checked after trimming: a blank value means "no filter", not an error.
    industry: Annotated[
        TrimmedText, at_most(128), Query(json_schema_extra={"maxLength": 128})
    ] = None,
    tier: Annotated[str | None, Query(pattern="^(high|mid|low)$")] = None,
    stage: Annotated[
        str | None, Query(pattern="^(prospect|new|returning|loyal|at_risk|churned)$")
    ] = None,
) -> Page[CustomerRead]:
    filters = CustomerFilter(
        country=country.upper() if country else None,
        customer_type=customer_type,
        role=role,
        industry=industry,
        tier=tier,
        stage=stage,
    )
    return await service.list_customers(session, filters=filters, cursor=cursor, limit=limit)


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase a customer, their personal data and their events",
    responses=problems(*AUTHED, 404),
)
async def delete_customer(customer_id: CustomerId, session: SessionDep, _: WriteAccess) -> Response:
    await service.erase(session, customer_id=customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
