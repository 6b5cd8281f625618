from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.db import SessionDep
from app.core.openapi import problems
from app.events.schemas import IngestResult, WebhookOrder
from app.webhooks import service

router = APIRouter(tags=["webhooks"])

# The body is read raw (the signature covers its bytes), so its schema is given by hand;
# CustomerUpsert is already among the components through PUT /v1/customers.
_BODY_SCHEMA = WebhookOrder.model_json_schema(ref_template="#/components/schemas/{model}")
_BODY_SCHEMA.pop("$defs", None)


@router.post(
    "/v1/webhooks/orders",
    response_model=IngestResult,
    summary="Receive one order or refund, signed per Standard Webhooks",
    description="Signed with `webhook-id`, `webhook-timestamp` and `webhook-signature` "
    "(HMAC-SHA256 over `id.timestamp.body` with the configured `whsec_` secret). A bad or "
    "missing signature, or a timestamp outside the tolerance, is 401 and nothing is stored. "
    "A re-delivery (same `webhook-id` or same `event_id`) is acknowledged with "
    '`{"accepted": 0, "duplicates": 1}`. The 200 is sent only after the order is committed. '
    "The optional `customer` object is upserted like `PUT /v1/customers/{id}`.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _BODY_SCHEMA}},
        }
    },
    responses=problems(400, 401, 413, 415, 422, 503),
)
async def receive_order(request: Request, session: SessionDep) -> IngestResult:
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await service.receive_order(
        session, body=body, headers=headers, settings=request.app.state.settings
    )
