"""Customers: upsert, read, list and erase."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification.models import CurrentClassification
from app.core.pagination import Page, decode_cursor, encode_cursor
from app.core.problems import Conflict, NotFound, field_error
from app.customers import erasure, repository
from app.customers.models import Customer
from app.customers.repository import CustomerFilter
from app.customers.schemas import ClassificationBrief, CustomerRead, CustomerUpsert


def to_read(customer: Customer, stored: CurrentClassification | None) -> CustomerRead:
    brief = None
    if stored is not None:
        brief = ClassificationBrief(
            tier=stored.tier,
            stage=stored.stage,
            tier_score=stored.tier_score,
            as_of=stored.as_of,
            policy_version=stored.policy_version,
        )
    return CustomerRead(
        customer_id=customer.external_id,
        name=customer.name,
        email=customer.email,
        phone=customer.phone,
        country=customer.country,
        customer_type=customer.customer_type,
        role=customer.role,
        industry=customer.industry,
        company_size=customer.company_size,
        created_at=customer.created_at,
        attributes=customer.attributes or {},
        updated_at=customer.updated_at,
        classification=brief,
    )


_READ_JSON = CustomerRead.__pydantic_serializer__
_BRIEF = ("tier", "stage", "tier_score", "as_of", "policy_version")
_FIELDS = tuple(name for name in CustomerRead.model_fields if name != "classification")


def row_to_read(row: Mapping[str, Any]) -> CustomerRead:
    """A `repository.read` row as the customer: the same model, so the same bytes, as
    `to_read` makes of the ORM objects."""
    values = {name: row[name] for name in _FIELDS}
    values["attributes"] = values["attributes"] or {}
    values["classification"] = None if row["tier"] is None else {name: row[name] for name in _BRIEF}
    return CustomerRead.model_validate(values)


def upsert_values(data: CustomerUpsert) -> dict[str, Any]:
    """Columns to set: the fields the body names; a null `attributes` is {}."""
    values: dict[str, Any] = data.model_dump(include=data.model_fields_set)
    if values.get("attributes", ...) is None:
        values["attributes"] = {}
    return values


async def upsert(
    session: AsyncSession, *, customer_id: str, data: CustomerUpsert, restore: bool = False
) -> tuple[CustomerRead, bool]:
    """Create the customer or update the fields the body names; True when created.

    An erased customer comes back only with `restore` (they returned and consented):
    anything else that names them, a CRM re-sync included, is a 409.
    """
    key = erasure.subject(customer_id)
    await repository.hold(session, external_id=customer_id)
    if await repository.erased(session, subjects=[key]):
        if not restore:
            raise Conflict(
                f"Customer '{customer_id}' was erased; send restore=true to register them "
                "again (only with their consent)",
                errors=[field_error(["customer_id"], "was erased")],
            )
        await repository.lift_erasure(session, subject=key)
    values = upsert_values(data)
    created = await repository.upsert(session, external_id=customer_id, values=values)
    if created is None:  # erased meanwhile by a concurrent request
        raise Conflict(f"Customer '{customer_id}' was erased")
    return await get(session, customer_id=customer_id), created


async def get(session: AsyncSession, *, customer_id: str) -> CustomerRead:
    row = await repository.read(session, external_id=customer_id)
    if row is None:
        raise NotFound(f"No customer '{customer_id}'")
    return row_to_read(row)


async def get_json(session: AsyncSession, *, customer_id: str) -> bytes:
    """The customer as the JSON `GET /v1/customers/{id}` answers (what FastAPI would
    make of the `CustomerRead`, without validating it a second time)."""
    customer = await get(session, customer_id=customer_id)
    return _READ_JSON.to_json(customer)


async def list_customers(
    session: AsyncSession, *, filters: CustomerFilter, cursor: str | None, limit: int
) -> Page[CustomerRead]:
    rows = await repository.list_page(
        session, filters=filters, after=decode_cursor(cursor), limit=limit
    )
    return customer_page(rows, limit=limit)


def customer_page(
    rows: Sequence[Row[Customer, CurrentClassification]], *, limit: int
) -> Page[CustomerRead]:
    """A page from up to limit + 1 rows ordered by id: the extra row means there is more."""
    items = [to_read(customer, stored) for customer, stored in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    return Page[CustomerRead](items=items, next_cursor=next_cursor)


async def erase(session: AsyncSession, *, customer_id: str) -> None:
    """Erase the customer and everything of theirs; replays of their events are refused."""
    if not await repository.erase(
        session, external_id=customer_id, subject=erasure.subject(customer_id)
    ):
        raise NotFound(f"No customer '{customer_id}'")
