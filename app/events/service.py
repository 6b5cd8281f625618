"""Event ingestion: validate against the policy, store idempotently, all or nothing."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.observability import EVENTS_DUPLICATE, EVENTS_INGESTED
from app.core.pagination import Page, decode_cursor, encode_cursor
from app.core.problems import Invalid, NotFound, field_error
from app.events import repository
from app.events.repository import EventRow
from app.events.schemas import MONEY_TYPES, EventIn, EventRead, IngestResult
from app.policies.schemas import PolicyDocument
from app.policies.service import current_policy


def _rows(
    events: Sequence[EventIn], policy: PolicyDocument, customer_ids: dict[str, int]
) -> list[EventRow]:
    rows: list[EventRow] = []
    for e in events:
        currency = (e.currency or policy.base_currency) if e.type in MONEY_TYPES else None
        rate = policy.rate(currency) if currency else None
        rows.append(
            (
                e.event_id,
                customer_ids[e.customer_id],
                e.type,
                e.occurred_at,
                e.amount,
                currency,
                None if e.amount is None or rate is None else e.amount * rate,
                e.margin,
                None if e.margin is None or rate is None else e.margin * rate,
                e.rating,
                e.channel,
                None if e.attributes is None else orjson.dumps(e.attributes).decode(),
            )
        )
    return rows


def check_currencies(
    events: Sequence[EventIn], policy: PolicyDocument, *, prefix: Sequence[str | int] = ()
) -> None:
    """Every amount must be convertible to the base currency; name each one that is not."""
    errors = []
    for i, e in enumerate(events):
        if e.type in MONEY_TYPES and policy.rate(e.currency or policy.base_currency) is None:
            loc = [*prefix, i, "currency"] if prefix else ["currency"]
            error = field_error(
                loc,
                f"no exchange rate for {e.currency} in the policy (base {policy.base_currency})",
            )
            if prefix:
                error["index"] = i
            errors.append(error)
    if errors:
        raise Invalid(f"{len(errors)} invalid field(s)", errors=errors)


async def store(
    session: AsyncSession, *, events: Sequence[EventIn], source: str
) -> tuple[IngestResult, set[str]]:
    """Store new events in the session's transaction (not committed); the ids stored."""
    policy = (await current_policy(session)).document
    check_currencies(events, policy, prefix=["events"] if source != "webhook" else ())
    customer_ids = await repository.ensure_customers(
        session, external_ids=[e.customer_id for e in events]
    )
    stored = set(await repository.insert_events(session, rows=_rows(events, policy, customer_ids)))
    result = IngestResult(accepted=len(stored), duplicates=len(events) - len(stored))
    return result, stored


async def ingest(session: AsyncSession, *, events: Sequence[EventIn], source: str) -> IngestResult:
    """Store a batch all-or-nothing; events already stored count as duplicates."""
    result, _ = await store(session, events=events, source=source)
    await session.commit()
    EVENTS_INGESTED.labels(source).inc(result.accepted)
    EVENTS_DUPLICATE.labels(source).inc(result.duplicates)
    return result


async def list_for_customer(
    session: AsyncSession, *, customer_id: str, cursor: str | None, limit: int
) -> Page[EventRead]:
    before = decode_cursor(cursor)
    rows = await repository.page_for_customer(
        session, external_id=customer_id, before=before, limit=limit
    )
    if not rows and not await repository.customer_exists(session, external_id=customer_id):
        raise NotFound(f"No customer '{customer_id}'")
    items = [
        EventRead(
            event_id=r["event_id"],
            type=r["type"],
            occurred_at=r["occurred_at"],
            amount=_plain(r["amount"]),
            currency=r["currency"],
            amount_base=_plain(r["amount_base"]),
            margin=_plain(r["margin"]),
            rating=r["rating"],
            channel=r["channel"],
            attributes=None if r["attributes"] is None else orjson.loads(r["attributes"]),
        )
        for r in rows[:limit]
    ]
    next_cursor = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
    return Page[EventRead](items=items, next_cursor=next_cursor)


def _plain(value: Decimal | None) -> Decimal | None:
    """NUMERIC(24, 6) pads to six places; give amounts back as the shortest exact decimal."""
    if value is None:
        return None
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal
