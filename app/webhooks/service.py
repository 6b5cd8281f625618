"""Order webhooks: verify, then store the order (and its customer) like the events API."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.observability import EVENTS_DUPLICATE, EVENTS_INGESTED
from app.core.problems import BadRequest, ServiceUnavailable, Unauthorized
from app.core.settings import Settings
from app.customers import repository as customers
from app.events import service as events
from app.events.schemas import EventIn, IngestResult, WebhookOrder
from app.webhooks import repository
from app.webhooks.signing import VerificationError, parse_secrets, verify

DUPLICATE = IngestResult(accepted=0, duplicates=1)


def authenticate(body: bytes, headers: Mapping[str, str], settings: Settings) -> str:
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value().strip():
        raise ServiceUnavailable("Webhooks are not configured: set STRATUM_WEBHOOK_SECRET")
    try:
        secrets = parse_secrets(settings.webhook_secret.get_secret_value())
        return verify(
            body,
            headers,
            secrets=secrets,
            tolerance_seconds=settings.webhook_tolerance_seconds,
        )
    except VerificationError as exc:
        raise Unauthorized(f"Webhook signature rejected: {exc}") from exc


def parse(body: bytes) -> WebhookOrder:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("The request body is not valid JSON") from exc
    try:
        return WebhookOrder.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


async def receive_order(
    session: AsyncSession, *, body: bytes, headers: Mapping[str, str], settings: Settings
) -> IngestResult:
    """Store one delivery once; a re-delivery (same webhook-id or order) is acknowledged."""
    webhook_id = authenticate(body, headers, settings)
    order = parse(body)
    if await repository.seen(session, webhook_id=webhook_id):
        EVENTS_DUPLICATE.labels("webhook").inc()
        return DUPLICATE
    if order.customer is not None:
        fields = order.customer.model_dump(include=order.customer.model_fields_set)
        await customers.upsert(session, external_id=order.customer_id, values=fields)
    event = EventIn.model_validate(order.model_dump(exclude={"customer"}))
    result, _ = await events.store(session, events=[event], source="webhook")
    if not await repository.record(session, webhook_id=webhook_id, event_id=order.event_id):
        await session.rollback()
        return DUPLICATE
    await session.commit()
    EVENTS_INGESTED.labels("webhook").inc(result.accepted)
    EVENTS_DUPLICATE.labels("webhook").inc(result.duplicates)
    return result
