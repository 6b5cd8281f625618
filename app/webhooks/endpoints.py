from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.openapi import problems
from app.core.session_deps import SessionDep
from app.events.schemas import EVENT_EXAMPLE, IngestResult, WebhookOrder, request_body
from app.webhooks import service

router = APIRouter(tags=["webhooks"])

_EXAMPLE = {**EVENT_EXAMPLE, "customer": {"name": "Acme GmbH", "country": "DE"}}


@router.post(
    "/v1/webhooks/orders",
    response_model=IngestResult,
    response_model_exclude_none=True,
    summary="Receive one order or refund, signed per Standard Webhooks",
    description="No API key: the delivery is signed per Standard Webhooks with "
    "`webhook-id`, `webhook-timestamp` and `webhook-signature` (HMAC-SHA256 over "
    "`id.timestamp.body` with the `whsec_` secret configured as STRATUM_WEBHOOK_SECRET; "
    "several space-separated secrets while one is rotated, several `v1,` signatures in the "
    "header). A bad or missing signature, or a timestamp more than "
    "STRATUM_WEBHOOK_TOLERANCE_SECONDS (default 300) away from now, is 401 and nothing is "
    "stored. The body is one event as in `POST /v1/events` (type `order` or `refund`), "
    "optionally with a `customer` object of `PUT /v1/customers/{customer_id}` fields, "
    'upserted with a new order. The first delivery answers `{"accepted": 1, "duplicates": '
    "0}`; a re-delivery (same `webhook-id`, or the same `event_id` under another id) "
    'answers `{"accepted": 0, "duplicates": 1}` and changes nothing. The 200 is sent only '
    "after the order is committed. 503 when no secret is configured.",
    openapi_extra={"requestBody": request_body(WebhookOrder, _EXAMPLE)},
    responses=problems(400, 401, 413, 415, 422, 503),
)
async def receive_order(request: Request, session: SessionDep) -> IngestResult:
    return await service.receive_order(
        session,
        body=await request.body(),
        headers=request.headers,
        settings=request.app.state.settings,
    )
