"""The common, well-formed import row checked without building a model.

`event_record` and `customer_record` apply the API's rules for `EventIn` and
`CustomerUpsert` (the same shared validators from `app.core.types`) to a row of plain
JSON values and answer its staging values, or None for anything they do not accept as
plainly valid: an unknown or null field, a number where they take only text, any value a
validator turns away. The importer validates such a row with the API's model, so every
rejection keeps the API's exact reason; a row these accept is one the model accepts, with
the same values.

`clean` says that no text anywhere in the row can hold a character the API turns away
(NUL, a control character, DEL, a lone surrogate): true of a JSON line with neither a
backslash escape nor a DEL byte, since JSON cannot carry the others raw. Such a row skips
the per-string character checks, which are most of the cost of a row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from app.core import types
from app.core.countries import COUNTRY_CODES
from app.customers.schemas import _email, _phone
from app.events.schemas import BASE_LIMIT, EVENT_FIELDS, EVENT_TYPE_NAMES, MONEY_TYPES, Rates

_CHANNEL_LIMIT = 64
# The usual shapes, which need none of the general parsers' steps: a UTC time to the
# second or microsecond, a plain decimal within the API's 15 digits and 6 places.
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")
_PLAIN_MONEY = re.compile(r"\d{1,15}(?:\.\d{1,6})?")
_PLAIN_SIGNED = re.compile(r"-?\d{1,15}(?:\.\d{1,6})?")
_INT64 = 2**63

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
    if type(value) is str and (_PLAIN_SIGNED if signed else _PLAIN_MONEY).fullmatch(value):
        return Decimal(value)
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        amount: Decimal = types._signed_money(value) if signed else types._money(value)
    except ValueError:
        return None
    return amount


def _time(value: str, latest: datetime) -> datetime | None:
    if _UTC_TIME.fullmatch(value):
        try:
            # Already UTC: what the API's parser answers after its own steps.
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        try:
            moment = types._rfc3339(value)
        except ValueError:
            return None
    if moment > latest or moment < types.EARLIEST:
        return None
    return moment


def _plain_json(value: Any, depth: int = 0) -> bool:
    """Whether `value` (from a clean row) is JSON that PostgreSQL gives back unchanged:
    `types.json_problem` without its character checks."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_INT64 <= value < _INT64)
    if kind is float:
        return math.isfinite(value) and abs(value) < types.MAX_JSON_FLOAT
    if depth >= types.MAX_JSON_DEPTH or (kind is not dict and kind is not list):
        return False
    for item in value.values() if kind is dict else value:
        if type(item) is not str and not _plain_json(item, depth + 1):
            return False
    return True


def attributes_text(value: Any, *, clean: bool) -> str | None:
    """A valid `attributes` object as its JSON text, or None when it is not one."""
    if type(value) is not dict:
        return None
    if clean:
        if not _plain_json(value):
            return None
    elif types.json_problem(value) is not None:
        return None
    try:
        encoded = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return None if len(encoded) > types.MAX_ATTRIBUTES_BYTES else encoded.decode()


def event_record(
    row: dict[str, Any], policy: Rates, latest: datetime, *, clean: bool = False
) -> EventRecord | None:
    """(event_id, customer, type, occurred_at, amount, currency, margin, rating, channel,
    attributes as JSON text) of a plainly valid event, or None: ask the model.

    `latest` is the newest time accepted (now plus the API's slack), fixed per batch.
    """
    if not row.keys() <= EVENT_FIELDS:
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
        and kind in EVENT_TYPE_NAMES
        and types.is_external_id(event_id)
        and types.is_external_id(customer)
    ):
        return None
    occurred_at = _time(moment, latest)
    if occurred_at is None:
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
            len(channel) > _CHANNEL_LIMIT or (not clean and types.text_problem(channel))
        ):
            return None
    if "attributes" in row:
        attributes = attributes_text(row["attributes"], clean=clean)
        if attributes is None:
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


CUSTOMER_FIELDS = (
    "name",
    "email",
    "phone",
    "country",
    "customer_type",
    "role",
    "industry",
    "company_size",
    "created_at",
    "attributes",
)
_CUSTOMER_AT = {field: at for at, field in enumerate(CUSTOMER_FIELDS)}
CustomerRecord = tuple[list[Any], list[bool]]
_Check = Callable[[Any, datetime, bool], Any]  # the stored value, or ValueError


def _short_text(limit: int, then: Callable[[str], Any] | None = None) -> _Check:
    def check(value: Any, latest: datetime, clean: bool) -> Any:
        if value is None:
            return None
        if type(value) is not str:
            raise ValueError
        text = value.strip()
        if not text:
            return None
        if not clean and types.text_problem(text) is not None:
            raise ValueError
        if then is not None:
            return then(text)
        if len(text) > limit:
            raise ValueError
        return text

    return check


def _choice(choices: frozenset[str]) -> _Check:
    def check(value: Any, latest: datetime, clean: bool) -> Any:
        if value is None:
            return None
        if type(value) is not str or (choice := value.strip().lower()) not in choices:
            raise ValueError
        return choice

    return check


def _country(value: Any, latest: datetime, clean: bool) -> Any:
    if value is None:
        return None
    if type(value) is not str or (code := value.strip().upper()) not in COUNTRY_CODES:
        raise ValueError
    return code


def _created_at(value: Any, latest: datetime, clean: bool) -> Any:
    if value is None:
        return None
    moment = _time(value, latest) if type(value) is str else None
    if moment is None:
        raise ValueError
    return moment


def _attributes(value: Any, latest: datetime, clean: bool) -> Any:
    # A null `attributes` is stored as {} (as PUT /v1/customers stores it).
    text = "{}" if value is None else attributes_text(value, clean=clean)
    if text is None:
        raise ValueError
    return text


# The rules of CustomerUpsert's fields, in CUSTOMER_FIELDS order.
_CUSTOMER_CHECKS: dict[str, tuple[int, _Check]] = {
    field: (at, check)
    for at, (field, check) in enumerate(
        (
            ("name", _short_text(256)),
            ("email", _short_text(0, _email)),
            ("phone", _short_text(0, _phone)),
            ("country", _country),
            ("customer_type", _choice(frozenset({"individual", "business"}))),
            ("role", _choice(frozenset({"end_customer", "distributor"}))),
            ("industry", _short_text(128)),
            (
                "company_size",
                _choice(frozenset({"micro", "small", "medium", "large", "enterprise"})),
            ),
            ("created_at", _created_at),
            ("attributes", _attributes),
        )
    )
}
assert tuple(_CUSTOMER_CHECKS) == CUSTOMER_FIELDS


def customer_record(
    row: dict[str, Any], latest: datetime, *, clean: bool = False
) -> CustomerRecord | None:
    """The values of `CUSTOMER_FIELDS` (attributes as JSON text) and which of them the
    row gives, of a plainly valid customer row without its customer_id; None: ask the
    model."""
    values: list[Any] = [None] * len(CUSTOMER_FIELDS)
    given = [False] * len(CUSTOMER_FIELDS)
    try:
        for field, value in row.items():
            at, check = _CUSTOMER_CHECKS[field]
            values[at] = check(value, latest, clean)
            given[at] = True
    except (KeyError, ValueError):
        return None
    return values, given
