"""Webhook endpoints of the CRM: register, read, change, remove; their delivery log."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import Page, decode_cursor, encode_cursor
from app.core.problems import Invalid, NotFound, field_error
from app.core.settings import Settings
from app.notifications import addresses
from app.notifications.models import DeliveryAttempt, WebhookEndpoint
from app.notifications.schemas import (
    AttemptRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
)
from app.notifications.sealing import seal

PREFIX = "ep_"


def _read(endpoint: WebhookEndpoint) -> EndpointRead:
    return EndpointRead(
        id=endpoint.public_id,
        url=endpoint.url,
        events=endpoint.events,
        description=endpoint.description,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _events(events: list[str]) -> list[str]:
    unique = list(dict.fromkeys(events))
    return ["*"] if "*" in unique else unique


async def _checked_url(url: str, settings: Settings) -> str:
    try:
        await addresses.check(url, allow_private=settings.outbound_allow_private_networks)
    except addresses.RefusedUrl as exc:
        raise Invalid(
            "The endpoint URL is refused", errors=[field_error(["url"], str(exc))]
        ) from exc
    return url


async def create(
    session: AsyncSession, *, data: EndpointCreate, settings: Settings
) -> EndpointCreated:
    url = await _checked_url(data.url, settings)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    endpoint = WebhookEndpoint(
        public_id=PREFIX + secrets.token_hex(8),
        url=url,
        events=_events(list(data.events)),
        description=data.description,
        secret_sealed=seal(settings, secret),
    )
    session.add(endpoint)
    await session.commit()
    await session.refresh(endpoint)
    return EndpointCreated(**_read(endpoint).model_dump(), secret=secret)


async def _get(session: AsyncSession, public_id: str) -> WebhookEndpoint:
    endpoint = (
        await session.execute(select(WebhookEndpoint).where(WebhookEndpoint.public_id == public_id))
    ).scalar_one_or_none()
    if endpoint is None:
        raise NotFound(f"No webhook endpoint '{public_id}'")
    return endpoint


async def get(session: AsyncSession, *, endpoint_id: str) -> EndpointRead:
    return _read(await _get(session, endpoint_id))


async def list_endpoints(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> Page[EndpointRead]:
    after = decode_cursor(cursor)
    statement = select(WebhookEndpoint).order_by(WebhookEndpoint.id).limit(limit + 1)
    if after is not None:
        statement = statement.where(WebhookEndpoint.id > after)
    rows: Sequence[WebhookEndpoint] = (await session.execute(statement)).scalars().all()
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return Page[EndpointRead](items=[_read(e) for e in rows[:limit]], next_cursor=next_cursor)


async def change(
    session: AsyncSession, *, endpoint_id: str, data: EndpointUpdate, settings: Settings
) -> EndpointRead:
    endpoint = await _get(session, endpoint_id)
    values: dict[str, Any] = {}
    fields = data.model_fields_set
    if "url" in fields:
        if data.url is None:
            raise Invalid("The URL cannot be removed", errors=[field_error(["url"], "required")])
        values["url"] = await _checked_url(data.url, settings)
    if "events" in fields:
        if data.events is None:
            raise Invalid(
                "The events cannot be removed", errors=[field_error(["events"], "required")]
            )
        values["events"] = _events(list(data.events))
    if "description" in fields:
        values["description"] = data.description
    if values:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id)
            .values(**values, updated_at=func.now())
        )
        await session.commit()
        await session.refresh(endpoint)
    return _read(endpoint)


async def remove(session: AsyncSession, *, endpoint_id: str) -> None:
    """The endpoint, its pending deliveries and its log (ON DELETE CASCADE)."""
    result = await session.execute(
        delete(WebhookEndpoint)
        .where(WebhookEndpoint.public_id == endpoint_id)
        .returning(WebhookEndpoint.id)
    )
    if result.first() is None:
        raise NotFound(f"No webhook endpoint '{endpoint_id}'")
    await session.commit()


async def attempts(
    session: AsyncSession, *, endpoint_id: str, cursor: str | None, limit: int
) -> Page[AttemptRead]:
    """The delivery log, newest attempt first."""
    endpoint = await _get(session, endpoint_id)
    before = decode_cursor(cursor)
    statement = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.endpoint_id == endpoint.id)
        .order_by(DeliveryAttempt.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        statement = statement.where(DeliveryAttempt.id < before)
    rows: Sequence[DeliveryAttempt] = (await session.execute(statement)).scalars().all()
    items = [
        AttemptRead(
            event_id=a.event_id,
            type=a.event_type,
            attempt=a.attempt,
            attempted_at=a.attempted_at,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
        )
        for a in rows[:limit]
    ]
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return Page[AttemptRead](items=items, next_cursor=next_cursor)
