"""A batch of plainly valid events turned into rows without building a model per event.

`batch_rows` applies `EventIn`'s rules to a decoded `POST /v1/events` body and answers
the rows to store (as `app.events.repository` takes them), or None as soon as any event
is less than plainly valid: an unknown or repeated-looking field, a number where text is
usual, any value a rule turns away. The caller then validates the whole body with the
model, so every 400 and 422 keeps the model's exact errors; what this accepts, the model
accepts with the same stored values (tests/events compares the two on generated input).
Building ~1000 pydantic models and their validators was most of a batch's CPU.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Context, Decimal, localcontext
from typing import Any

import orjson

from app.core import types
from app.events.repository import EventRow
from app.events.schemas import BASE_LIMIT, EVENT_FIELDS, EVENT_TYPE_NAMES, MONEY_TYPES, Rates

_CHANNEL_LIMIT = 64
_MAX_BATCH = 1000
# Below 10^15 with at most six places: the amounts `types._money` takes, in the form
# CRMs send them. Anything else (exponents, signs, underscores, spaces) goes to the model.
_AMOUNT = re.compile(r"\d{1,15}(?:\.\d{1,6})?")
_SIGNED = re.compile(r"-?\d{1,15}(?:\.\d{1,6})?")
_LIMIT = 10**15
_UTC_SECOND = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
# Any escape in orjson's output but \" and \\, and DEL, which it writes as it is.
_ESCAPED = re.compile(rb'\\[^"\\]|\x7f')
_INT64 = 2**63
# amount × rate exactly, as app.events.service converts.
_EXACT = Context(prec=60)


class _NotPlain(Exception):
    """This event needs the model (to be accepted, or to be named in a 422)."""


def batch_rows(body: bytes, policy: Rates) -> list[EventRow] | None:
    """The rows of a body whose every event is plainly valid; None: ask the model."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or data.keys() != {"events"}:
        return None
    events = data["events"]
    if type(events) is not list or not 1 <= len(events) <= _MAX_BATCH:
        return None
    # Whole seconds, so that the text compares as the instant (never later than it).
    latest = (datetime.now(UTC) + types.FUTURE_SLACK).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = policy.base_currency
    try:
        with localcontext(_EXACT):
            return [_row(event, policy, base, latest) for event in events]
    except (_NotPlain, ValueError, TypeError, orjson.JSONEncodeError):
        return None


def _amount(value: Any, *, signed: bool) -> Decimal | None:
    if value is None:
        return None
    if type(value) is str and (_SIGNED if signed else _AMOUNT).fullmatch(value):
        return Decimal(value)
    if type(value) is int and (-_LIMIT if signed else -1) < value < _LIMIT:
        return Decimal(value)
    raise _NotPlain


def _text(value: Any) -> str | None:
    # TrimmedText with at_most(64): trimmed, empty is absent.
    if value is None:
        return None
    if type(value) is not str:
        raise _NotPlain
    text = value.strip()
    if not text:
        return None
    if len(text) > _CHANNEL_LIMIT or types.text_problem(text) is not None:
        raise _NotPlain
    return text


def _attributes(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not dict:
        raise _NotPlain
    # orjson refuses lone surrogates and writes every C0 control as an escape: a text
    # with nothing escaped but quotes and backslashes holds no character that
    # `types.json_problem` turns away, and the values left to check are the numbers.
    encoded = orjson.dumps(value)
    if len(encoded) > types.MAX_ATTRIBUTES_BYTES or _ESCAPED.search(encoded):
        raise _NotPlain
    if not all(_flat_value(v) for v in value.values()) and types.json_problem(value):
        raise _NotPlain
    return encoded.decode()


def _flat_value(value: Any) -> bool:
    """A scalar `types.json_problem` accepts (its text checked by the caller)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_INT64 <= value < _INT64)
    return kind is float and abs(value) < types.MAX_JSON_FLOAT


def _time(moment: str, latest: str) -> str:
    """occurred_at as the model stores it: the common UTC form by its text alone (ISO
    text of one layout orders as its instant), anything else through the model's parser."""
    if _UTC_SECOND.fullmatch(moment) and "1970" <= moment <= latest:
        datetime.fromisoformat(moment)  # a real calendar time, or ValueError
        return moment[:19] + "+00:00"
    occurred_at: datetime = types._rfc3339(moment)
    if occurred_at > datetime.fromisoformat(latest):
        raise _NotPlain
    return occurred_at.isoformat()


def _row(event: Any, policy: Rates, base: str, latest: str) -> EventRow:
    if type(event) is not dict or not event.keys() <= EVENT_FIELDS:
        raise _NotPlain
    event_id = event.get("event_id")
    customer = event.get("customer_id")
    kind = event.get("type")
    moment = event.get("occurred_at")
    if not (
        type(event_id) is str
        and type(customer) is str
        and type(moment) is str
        and kind in EVENT_TYPE_NAMES
        and types.is_external_id(event_id)
        and types.is_external_id(customer)
    ):
        raise _NotPlain
    occurred_at = _time(moment, latest)
    amount = _amount(event.get("amount"), signed=False)
    margin = _amount(event.get("margin"), signed=True)
    raw_currency = event.get("currency")
    currency = None if raw_currency is None else types._currency(raw_currency)
    rating = event.get("rating")
    if rating is not None and (type(rating) is not int or not 0 <= rating <= 10):
        raise _NotPlain
    if rating is not None and kind != "feedback":
        raise _NotPlain
    amount_text = amount_base = margin_text = margin_base = None
    if kind in MONEY_TYPES:
        if amount is None or (margin is not None and kind != "order"):
            raise _NotPlain
        currency = currency or base
        rate = policy.rate(currency)
        if rate is None or amount * rate >= BASE_LIMIT:
            raise _NotPlain
        amount_text = str(amount)
        amount_base = amount_text if rate == 1 else str(amount * rate)
        if margin is not None:
            if abs(margin) * rate >= BASE_LIMIT:
                raise _NotPlain
            margin_text = str(margin)
            margin_base = margin_text if rate == 1 else str(margin * rate)
    elif amount is not None or currency is not None or margin is not None:
        raise _NotPlain
    return (
        event_id,
        customer,
        kind,
        occurred_at,
        amount_text,
        currency,
        amount_base,
        margin_text,
        margin_base,
        rating,
        _text(event.get("channel")),
        _attributes(event.get("attributes")),
    )
