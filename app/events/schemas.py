from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)

from app.core.types import (
    Attributes,
    CurrencyCode,
    ExternalId,
    Money,
    PastTimestamp,
    SignedMoney,
)
from app.customers.schemas import CustomerUpsert

EventType = Literal["order", "refund", "inquiry", "feedback", "interaction"]
MONEY_TYPES = ("order", "refund")


def _rating(value: Any) -> Any:
    # 7.0 from a JSON encoder is a rating of 7; 7.5 or "7" is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Rating = Annotated[StrictInt, BeforeValidator(_rating), Field(ge=0, le=10)]
Channel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

EVENT_EXAMPLE: dict[str, Any] = {
    "event_id": "o-20260301-0042",
    "customer_id": "c-1042",
    "type": "order",
    "occurred_at": "2026-03-01T10:00:00Z",
    "amount": "129.90",
    "currency": "EUR",
    "margin": "31.20",
    "channel": "webshop",
}


class EventIn(BaseModel):
    """One event as a CRM, shop or ERP sends it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [dict(EVENT_EXAMPLE)]})

    event_id: ExternalId = Field(description="The caller's id; the idempotency key.")
    customer_id: ExternalId = Field(description="Unknown customers are created on the fly.")
    type: EventType
    occurred_at: PastTimestamp
    amount: Money | None = Field(default=None, description="Required for order and refund.")
    currency: CurrencyCode | None = Field(
        default=None, description="ISO 4217; defaults to the policy's base currency."
    )
    margin: SignedMoney | None = Field(default=None, description="Profit on the order.")
    rating: Rating | None = Field(default=None, description="Feedback rating, 0-10.")
    channel: Channel | None = None
    attributes: Attributes | None = None

    @model_validator(mode="after")
    def _fields_fit_type(self) -> EventIn:
        money = self.type in MONEY_TYPES
        if money and self.amount is None:
            raise ValueError(f"amount is required for {self.type} events")
        if not money:
            for name in ("amount", "currency", "margin"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is only allowed on order and refund events")
        if self.rating is not None and self.type != "feedback":
            raise ValueError("rating is only allowed on feedback events")
        if self.margin is not None and self.type != "order":
            raise ValueError("margin is only allowed on order events")
        return self


class EventBatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"events": [EVENT_EXAMPLE]}]}
    )

    events: list[EventIn] = Field(min_length=1, max_length=1000)


class IngestResult(BaseModel):
    accepted: int = Field(description="Events stored now")
    duplicates: int = Field(description="Events whose event_id was already stored")


class WebhookOrder(EventIn):
    """One order or refund per delivery, optionally with the customer's fields."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{**EVENT_EXAMPLE, "customer": {"name": "Acme GmbH", "country": "DE"}}]
        },
    )

    type: Literal["order", "refund"]
    customer: CustomerUpsert | None = None


class EventRead(BaseModel):
    event_id: str
    type: str
    occurred_at: datetime
    amount: Decimal | None
    currency: str | None
    amount_base: Decimal | None
    margin: Decimal | None
    rating: int | None
    channel: str | None
    attributes: dict[str, Any] | None
