"""Order webhooks: verify, then store the order (and its customer) like the events API."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import after_commit
from app.core.observability import log
from app.core.problems import ServiceUnavailable, Unauthorized
from app.core.settings import Settings
from app.customers import erasure
from app.customers.service import upsert_values
from app.events import service as events
from app.events.schemas import IngestResult, SkippedEvent, WebhookOrder
from app.policies.service import in_force, lock_for_ingest
from app.webhooks import repository
from app.webhooks.signing import (
    MalformedSecret,
    VerificationError,
    parse_secrets,
    read_headers,
    verify,
)

DUPLICATE = IngestResult(accepted=0, duplicates=1)
ACCEPTED = IngestResult(accepted=1, duplicates=0)


def authenticate(body: bytes, headers: Mapping[str, str], settings: Settings) -> str:
    """The delivery's webhook-id once its signature and timestamp check out."""
    try:
        read_headers(headers)
    except VerificationError as exc:
        raise Unauthorized(f"Webhook signature rejected: {exc}") from exc
    configured = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if not configured.strip():
        raise ServiceUnavailable("Webhooks are not configured: set STRATUM_WEBHOOK_SECRET")
    try:
        secrets = parse_secrets(configured)
    except MalformedSecret as exc:
        log.error("webhook secret is malformed", reason=str(exc))
        raise ServiceUnavailable(
            "Webhooks are misconfigured: STRATUM_WEBHOOK_SECRET is not a valid whsec_ secret"
        ) from exc
    try:
        return verify(
            body, headers, secrets=secrets, tolerance_seconds=settings.webhook_tolerance_seconds
        )
    except VerificationError as exc:
        raise Unauthorized(f"Webhook signature rejected: {exc}") from exc


async def receive_order(
    session: AsyncSession, *, body: bytes, headers: Mapping[str, str], settings: Settings
) -> IngestResult:
    """Store one delivery once; a re-delivery (same webhook-id or order) is acknowledged.

    The delivery record, the event and the customer's fields commit together, and only
    then is the answer sent: a sender that saw no 2xx may safely deliver again.
    """
    webhook_id = authenticate(body, headers, settings)
    # The shape first; the rates once the policy in force is known (under its lock).
    order = events.parse(WebhookOrder, body, policy=None)
    await lock_for_ingest(session)
    prepared = await repository.prepare(
        session, customer_id=order.customer_id, subject=erasure.subject(order.customer_id)
    )
    if prepared.erased:
        return _erased(order)
    policy = (await in_force(session, version=prepared.version)).document
    event = order.event()
    events.check_rates(event, policy)
    # A known order carries nothing new; its (possibly older) customer fields are not
    # applied, which the statement sees for itself.
    done = await repository.store(
        session,
        webhook_id=webhook_id,
        row=events.event_row(event, policy),
        customer_fields={} if order.customer is None else upsert_values(order.customer),
    )
    if not done.found:  # erased while this delivery waited for the customer's row
        return _erased(order)
    result = DUPLICATE if not done.stored else ACCEPTED
    # The request's session dependency commits before the answer is sent.
    after_commit(session, lambda: events.count(result, source="webhook"))
    return result


def _erased(order: WebhookOrder) -> IngestResult:
    """Acknowledged, so the sender stops retrying; not even the delivery is recorded."""
    return IngestResult(
        accepted=0,
        duplicates=0,
        skipped=[SkippedEvent(index=0, event_id=order.event_id, reason=events.ERASED_REASON)],
    )
