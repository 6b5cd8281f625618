"""Wire shapes for events: what a CRM posts, what the API answers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.core.types import (
    Attributes,
    CurrencyCode,
    ExternalId,
    Money,
    PastTimestamp,
    SignedMoney,
    TrimmedText,
    at_most,
)
from app.customers.schemas import CustomerUpsert

EventType = Literal["order", "refund", "inquiry", "feedback", "interaction"]
EVENT_TYPE_NAMES: frozenset[str] = frozenset(get_args(EventType))
MONEY_TYPES = frozenset({"order", "refund"})
# events.amount_base and margin_base are NUMERIC(24, 6): anything from 10^18 up overflows.
BASE_LIMIT = Decimal("1e18")
RULE = "event_rule"

# bool is an int subclass and 7.0 a float: StrictInt turns both away.
Rating = Annotated[StrictInt, Field(ge=0, le=10)]
Channel = Annotated[TrimmedText, at_most(64)]


class Rates(Protocol):
    """What validation needs from the policy in force (app.policies.schemas.PolicyDocument)."""

    @property
    def base_currency(self) -> str: ...

    def rate(self, currency: str) -> Decimal | None: ...


EVENT_EXAMPLE: dict[str, Any] = {
    "event_id": "o-20260301-0042",
    "customer_id": "c-1042",
    "type": "order",
    "occurred_at": "2026-03-01T10:00:00Z",
    "amount": "129.90",
    "currency": "EUR",
    "margin": "31.20",
    "channel": "webshop",
    "attributes": {"sku": "A-17", "quantity": 3},
}


def _rule(field: str, message: str) -> PydanticCustomError:
    # A model validator cannot point at a field itself; `field` in the context lets
    # validation_errors() name `events[3].amount` instead of `events[3]`.
    return PydanticCustomError(RULE, message, {"field": field})


class EventIn(BaseModel):
    """One event as a CRM, shop or ERP sends it.

    Validated with `context={"policy": <Rates>}`, the currency is also checked against the
    policy's exchange rates; without a context only the shape is checked.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EVENT_EXAMPLE]})

    event_id: ExternalId = Field(description="The caller's id; the idempotency key.")
    customer_id: ExternalId = Field(description="Unknown customers are created on the fly.")
    type: EventType
    occurred_at: PastTimestamp = Field(description="RFC 3339 with an offset; not in the future.")
    amount: Money | None = Field(
        default=None, description="Decimal ≥ 0; required for order and refund, else absent."
    )
    currency: CurrencyCode | None = Field(
        default=None,
        description="ISO 4217, with an exchange rate in the policy; defaults to its base "
        "currency. Order and refund only.",
    )
    margin: SignedMoney | None = Field(
        default=None, description="Profit on the order (negative for a loss). Order only."
    )
    rating: Rating | None = Field(default=None, description="Feedback rating, 0-10 (integer).")
    channel: Channel = Field(default=None, description="Where it happened, e.g. `webshop`.")
    attributes: Attributes | None = Field(
        default=None, description="The caller's own fields, as a JSON object (max 16 KiB)."
    )

    @model_validator(mode="after")
    def _fits_type(self, info: ValidationInfo) -> EventIn:
        if self.type in MONEY_TYPES:
            if self.amount is None:
                raise _rule("amount", f"is required for {self.type} events")
            if self.margin is not None and self.type != "order":
                raise _rule("margin", "is only allowed on order events")
            policy = info.context.get("policy") if info.context else None
            if policy is not None:
                check_conversion(self, policy)
        else:
            for name in ("amount", "currency", "margin"):
                if getattr(self, name) is not None:
                    raise _rule(name, "is only allowed on order and refund events")
        if self.rating is not None and self.type != "feedback":
            raise _rule("rating", "is only allowed on feedback events")
        return self


def check_conversion(event: EventIn, policy: Rates) -> None:
    base = policy.base_currency
    currency = event.currency or base
    rate = policy.rate(currency)
    if rate is None:
        raise _rule("currency", f"no exchange rate for {currency} in the policy (base {base})")
    for name, value in (("amount", event.amount), ("margin", event.margin)):
        if value is not None and abs(value) * rate >= BASE_LIMIT:
            raise _rule(name, f"is too large once converted to {base}")


# The keys an event may carry: the fast paths hand anything else to the model.
EVENT_FIELDS: frozenset[str] = frozenset(EventIn.model_fields)


class EventBatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"events": [EVENT_EXAMPLE]}]}
    )

    events: list[EventIn] = Field(min_length=1, max_length=1000)


class SkippedEvent(BaseModel):
    index: int = Field(description="Position of the event in the batch")
    event_id: str
    reason: str


class IngestResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": 998, "duplicates": 2}]})

    accepted: int = Field(description="Events stored now")
    duplicates: int = Field(
        description="Events whose event_id was already stored, or repeated in this batch"
    )
    skipped: list[SkippedEvent] | None = Field(
        default=None,
        description="Present when valid events were not stored, each with its reason: their "
        "customer was erased (DELETE /v1/customers/{customer_id}), so a replay does not "
        "restore them",
    )


class WebhookOrder(EventIn):
    """One order or refund per delivery, optionally with the customer's fields."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{**EVENT_EXAMPLE, "customer": {"name": "Acme GmbH", "country": "DE"}}]
        },
    )

    type: Literal["order", "refund"]
    customer: CustomerUpsert | None = Field(
        default=None,
        description="Fields of PUT /v1/customers/{customer_id}, upserted with a new order.",
    )

    def event(self) -> EventIn:
        """The event alone, as POST /v1/events would take it (already validated)."""
        fields = {name: getattr(self, name) for name in EventIn.model_fields}
        return EventIn.model_construct(_fields_set=self.model_fields_set - {"customer"}, **fields)


class EventRead(BaseModel):
    event_id: str
    customer_id: str
    type: str
    occurred_at: datetime
    amount: Decimal | None = Field(description="As sent, in `currency`")
    currency: str | None
    amount_base: Decimal | None = Field(description="`amount` in the policy's base currency")
    margin: Decimal | None
    margin_base: Decimal | None
    rating: int | None
    channel: str | None
    attributes: dict[str, Any] | None
    received_at: datetime = Field(description="When Stratum stored the event")


def request_body(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI `requestBody` for an endpoint that reads and validates its raw body itself.

    Such endpoints skip FastAPI's body parsing (the webhook signature covers the raw
    bytes; events validate in one pass from JSON), so the schema is given here, with
    nested models inlined: they need no entry of their own under components.
    """
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    return {
        "required": True,
        "content": {
            "application/json": {"schema": _inline(schema, definitions), "example": example}
        },
    }


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node
