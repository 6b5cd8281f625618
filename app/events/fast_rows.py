"""The common, well-formed import row checked without building a model.

`event_record` applies the API's rules for `EventIn` (the same shared validators from
`app.core.types`) to a row of plain JSON values and answers its staging values, or None
for anything it does not accept as plainly valid: an unknown or null field, a number
where it takes only text, any value a validator turns away. The importer validates such
a row with the API's model, so every rejection keeps the API's exact reason; a row this
path accepts is one the model accepts, with the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from app.core import types
from app.events.schemas import BASE_LIMIT, MONEY_TYPES, Rates

_EVENT_TYPES = frozenset({"order", "refund", "inquiry", "feedback", "interaction"})
_EVENT_FIELDS = frozenset(
    {
        "event_id",
        "customer_id",
        "type",
        "occurred_at",
        "amount",
        "currency",
        "margin",
        "rating",
        "channel",
        "attributes",
    }
)
_CHANNEL_LIMIT = 64

EventRecord = tuple[
    str,
    str,
    str,
    datetime,
    Decimal | None,
    str | None,
    Decimal | None,
    int | None,
    str | None,
    str | None,
]


def _amount(value: Any, *, signed: bool) -> Decimal | None:
    # Text and integers only: a JSON float is left to the model's own parsing of it.
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        amount: Decimal = types._signed_money(value) if signed else types._money(value)
    except ValueError:
        return None
    return amount


def event_record(row: dict[str, Any], policy: Rates, latest: datetime) -> EventRecord | None:
    """(event_id, customer, type, occurred_at, amount, currency, margin, rating, channel,
    attributes as JSON text) of a plainly valid event, or None: ask the model.

    `latest` is the newest time accepted (now plus the API's slack), fixed per batch.
    """
    if not row.keys() <= _EVENT_FIELDS:
        return None
    event_id = row.get("event_id")
    customer = row.get("customer_id")
    kind = row.get("type")
    moment = row.get("occurred_at")
    if not (
        isinstance(event_id, str)
        and isinstance(customer, str)
        and isinstance(moment, str)
        and isinstance(kind, str)
        and kind in _EVENT_TYPES
        and types.is_external_id(event_id)
        and types.is_external_id(customer)
    ):
        return None
    try:
        occurred_at: datetime = types._rfc3339(moment)
    except ValueError:
        return None
    if occurred_at > latest:
        return None
    amount = currency = margin = rating = channel = attributes = None
    if "amount" in row:
        amount = _amount(row["amount"], signed=False)
        if amount is None:
            return None
    if "margin" in row:
        margin = _amount(row["margin"], signed=True)
        if margin is None:
            return None
    if "currency" in row:
        try:
            currency = types._currency(row["currency"])
        except ValueError:
            return None
    if "rating" in row:
        rating = row["rating"]
        if type(rating) is not int or not 0 <= rating <= 10:
            return None
    if "channel" in row:
        text = row["channel"]
        if not isinstance(text, str):
            return None
        channel = text.strip() or None
        if channel is not None and (
            len(channel) > _CHANNEL_LIMIT or types.text_problem(channel) is not None
        ):
            return None
    if "attributes" in row:
        try:
            attributes = orjson.dumps(types.plain_json_object(row["attributes"])).decode()
        except (ValueError, TypeError, orjson.JSONEncodeError):
            return None
    if kind in MONEY_TYPES:
        if amount is None or (margin is not None and kind != "order"):
            return None
        currency = currency or policy.base_currency
        rate = policy.rate(currency)
        if rate is None or abs(amount) * rate >= BASE_LIMIT:
            return None
        if margin is not None and abs(margin) * rate >= BASE_LIMIT:
            return None
    elif amount is not None or currency is not None or margin is not None:
        return None
    if rating is not None and kind != "feedback":
        return None
    return (
        event_id,
        customer,
        kind,
        occurred_at,
        amount,
        currency,
        margin,
        rating,
        channel,
        attributes,
    )


def latest_time() -> datetime:
    """The newest `occurred_at` the API accepts now."""
    return datetime.now(UTC) + types.FUTURE_SLACK
