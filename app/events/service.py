"""Event ingestion: validate against the policy, store idempotently, all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Context, Decimal, localcontext
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import after_commit
from app.core.observability import EVENTS_DUPLICATE, EVENTS_INGESTED
from app.core.pagination import Page, decode_position, encode_position
from app.core.problems import BadRequest, Invalid, NotFound, field_error
from app.customers import erasure
from app.customers import repository as customers
from app.customers.schemas import CustomerUpsert
from app.customers.service import upsert_values
from app.events import repository
from app.events.plain import batch_rows
from app.events.repository import EventRow
from app.events.schemas import (
    BASE_LIMIT,
    RULE,
    EventBatch,
    EventIn,
    EventRead,
    IngestResult,
    Rates,
    SkippedEvent,
    check_conversion,
)
from app.policies.service import policy_for_ingest

M = TypeVar("M", bound=BaseModel)

# amount × rate exactly: 21 digits of amount times a rate's digits stay far below 60.
_EXACT = Context(prec=60)


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as problem `errors` entries; batch items also get their `index`."""
    errors = []
    for error in exc.errors(include_url=False):
        loc: list[str | int] = list(error["loc"])
        if error["type"] == RULE:
            loc.append(error["ctx"]["field"])
        message = str(error["msg"]).split("\n")[0].removeprefix("Value error, ")
        entry = field_error(loc or ["body"], message)
        if len(loc) > 1 and loc[0] == "events" and isinstance(loc[1], int):
            entry["index"] = loc[1]
        errors.append(entry)
    return errors


def parse(model: type[M], body: bytes | str, *, policy: Rates | None) -> M:
    """Validate a JSON body against `model` and the policy; 400 or 422 naming every fault.

    Without a policy only the shape is checked (then `check_rates` with the policy)."""
    try:
        return model.model_validate_json(body, context={"policy": policy})
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False)):
            raise BadRequest("The request body is not valid JSON") from exc
        errors = validation_errors(exc)
        raise Invalid(f"{len(errors)} invalid field(s)", errors=errors) from exc


def check_rates(event: EventIn, policy: Rates) -> None:
    """What `parse` checks with the policy, for an event parsed without one: the same
    422 `parse` gives (a model validator stops at its first fault, so one error)."""
    try:
        check_conversion(event, policy)
    except PydanticCustomError as exc:
        errors = [field_error([str((exc.context or {})["field"])], exc.message())]
        raise Invalid("1 invalid field(s)", errors=errors) from exc


def event_row(event: EventIn, policy: Rates) -> EventRow:
    """The stored form of one event (amounts converted with the policy)."""
    return _rows([(0, event)], policy)[0]


async def ingest_json(session: AsyncSession, *, body: bytes) -> IngestResult:
    """A POST /v1/events body: validated in one pass, stored all or nothing (the request's
    transaction; counted once it is committed)."""
    policy = (await policy_for_ingest(session)).document
    rows = batch_rows(body, policy)
    if rows is not None:
        result = await store_rows(session, rows=rows)
    else:
        batch = parse(EventBatch, body, policy=policy)
        result = await store(session, events=batch.events, policy=policy)
    after_commit(session, lambda: count(result, source="api"))
    return result


async def ingest(session: AsyncSession, *, events: Sequence[EventIn], source: str) -> IngestResult:
    """Store validated events and commit, for callers outside a request (the importer)."""
    result = await store(session, events=events)
    await session.commit()
    count(result, source=source)
    return result


def count(result: IngestResult, *, source: str) -> None:
    """Metrics, once the events are committed."""
    EVENTS_INGESTED.labels(source).inc(result.accepted)
    EVENTS_DUPLICATE.labels(source).inc(result.duplicates)


async def store(
    session: AsyncSession, *, events: Sequence[EventIn], policy: Rates | None = None
) -> IngestResult:
    """Store new events in the session's transaction, without committing.

    The first event of each event_id in the batch is the one kept; repeats, and ids
    stored before, are duplicates. Events of erased customers are skipped, each named.
    `policy` is what policy_for_ingest gave in this transaction (taken here if absent).
    """
    in_force = policy if policy is not None else (await policy_for_ingest(session)).document
    return await _store(
        session,
        keys=[(e.event_id, e.customer_id) for e in events],
        rows_of=lambda kept: _rows(((i, events[i]) for i in kept), in_force),
    )


async def store_rows(session: AsyncSession, *, rows: Sequence[EventRow]) -> IngestResult:
    """`store` for events already in their stored form (converted under the policy lock
    this transaction holds)."""
    return await _store(
        session, keys=[(r[0], r[1]) for r in rows], rows_of=lambda kept: [rows[i] for i in kept]
    )


# (event_id, customer_id) of each event of a batch, in order.
_Keys = Sequence[tuple[str, str]]


async def _store(
    session: AsyncSession, *, keys: _Keys, rows_of: Callable[[list[int]], list[EventRow]]
) -> IngestResult:
    unique: dict[str, tuple[int, str]] = {}
    for index, (event_id, customer) in enumerate(keys):
        unique.setdefault(event_id, (index, customer))
    try:
        # A savepoint: a customer erased by a transaction that commits while this batch
        # waits on it undoes the insert, not the request; the second pass skips them.
        async with session.begin_nested():
            accepted, skipped = await _store_once(session, unique=unique, rows_of=rows_of)
    except repository.CustomerGone:
        accepted, skipped = await _store_once(session, unique=unique, rows_of=rows_of)
    return IngestResult(
        accepted=accepted,
        duplicates=len(keys) - accepted - len(skipped),
        skipped=skipped or None,
    )


async def _store_once(
    session: AsyncSession,
    *,
    unique: dict[str, tuple[int, str]],
    rows_of: Callable[[list[int]], list[EventRow]],
) -> tuple[int, list[SkippedEvent]]:
    by_subject = erasure.subjects({c for _, c in unique.values()})
    erased = await erased_ids(session, subjects=by_subject)
    skipped = [
        SkippedEvent(index=i, event_id=event_id, reason=ERASED_REASON)
        for event_id, (i, c) in unique.items()
        if c in erased
    ]
    rows = rows_of([i for i, c in unique.values() if c not in erased])
    kept = {s: c for s, c in by_subject.items() if c not in erased}
    await repository.ensure_customers(session, subjects=kept)
    return await repository.insert_events(session, rows=rows), skipped


ERASED_REASON = "the customer was erased; their events are not stored again"


async def erased_ids(session: AsyncSession, *, subjects: Mapping[bytes, str]) -> set[str]:
    """Which of these customer ids (by erasure subject, `erasure.subjects`) were erased,
    in one query for the lot."""
    found = await customers.erased(session, subjects=list(subjects))
    return {subjects[s] for s in found}


def customer_values(data: CustomerUpsert) -> dict[str, Any]:
    """Customer columns to set, as PUT /v1/customers sets them: the fields given; null
    attributes are {}."""
    return upsert_values(data)


def _rows(events: Iterable[tuple[int, EventIn]], policy: Rates) -> list[EventRow]:
    base = policy.base_currency
    rows: list[EventRow] = []
    errors: list[dict[str, Any]] = []
    with localcontext(_EXACT):
        for index, e in events:
            amount = currency = amount_base = margin = margin_base = None
            if e.amount is not None:
                # Checked again with the rates this transaction converts with: the
                # importer validates rows before it takes the policy lock.
                currency = e.currency or base
                rate = policy.rate(currency)
                if rate is None:
                    errors.append(
                        _item_error(index, "currency", f"no exchange rate for {currency}")
                    )
                    continue
                if (
                    e.amount * rate >= BASE_LIMIT
                    or abs(e.margin or Decimal(0)) * rate >= BASE_LIMIT
                ):
                    field = "amount" if e.amount * rate >= BASE_LIMIT else "margin"
                    errors.append(
                        _item_error(index, field, f"is too large once converted to {base}")
                    )
                    continue
                amount = str(e.amount)
                amount_base = amount if rate == 1 else str(e.amount * rate)
                if e.margin is not None:
                    margin = str(e.margin)
                    margin_base = margin if rate == 1 else str(e.margin * rate)
            rows.append(
                (
                    e.event_id,
                    e.customer_id,
                    e.type,
                    e.occurred_at.isoformat(),
                    amount,
                    currency,
                    amount_base,
                    margin,
                    margin_base,
                    e.rating,
                    e.channel,
                    None if e.attributes is None else orjson.dumps(e.attributes).decode(),
                )
            )
    if errors:
        raise Invalid(f"{len(errors)} invalid field(s)", errors=errors)
    return rows


def _item_error(index: int, field: str, message: str) -> dict[str, Any]:
    return field_error(["events", index, field], message, index=index)


async def list_for_customer(
    session: AsyncSession, *, customer_id: str, cursor: str | None, limit: int
) -> Page[EventRead]:
    """A customer's events, latest `occurred_at` first (ties: latest stored first)."""
    before = decode_position(cursor)
    internal_id = await repository.customer_id(session, external_id=customer_id)
    if internal_id is None:
        raise NotFound(f"No customer '{customer_id}'")
    rows = await repository.page_for_customer(
        session, customer_id=internal_id, before=before, limit=limit + 1
    )
    items = [_read(row, customer_id) for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = None if last is None else encode_position(last["occurred_at"], last["id"])
    return Page[EventRead](items=items, next_cursor=next_cursor)


def _read(row: Any, customer_id: str) -> EventRead:
    return EventRead(
        event_id=row["event_id"],
        customer_id=customer_id,
        type=row["type"],
        occurred_at=row["occurred_at"],
        amount=_plain(row["amount"]),
        currency=row["currency"],
        amount_base=_plain(row["amount_base"]),
        margin=_plain(row["margin"]),
        margin_base=_plain(row["margin_base"]),
        rating=row["rating"],
        channel=row["channel"],
        attributes=None if row["attributes"] is None else orjson.loads(row["attributes"]),
        received_at=row["received_at"],
    )


def _plain(value: Decimal | None) -> Decimal | None:
    """NUMERIC(24, 6) pads to six places; give amounts back as the shortest exact decimal."""
    if value is None:
        return None
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal
