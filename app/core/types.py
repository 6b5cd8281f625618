"""Validated wire types shared by every feature: ids, codes, times, money, free text."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BeforeValidator, StringConstraints

from app.core.countries import COUNTRY_CODES
from app.core.currencies import CURRENCY_CODES

ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
_ID_RE = re.compile(ID_PATTERN)

ExternalId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


def is_external_id(value: str) -> bool:
    return bool(_ID_RE.fullmatch(value))


# PostgreSQL cannot store NUL in text, and a lone surrogate (which JSON's \ud800 escape
# can produce) is not encodable as UTF-8: either would fail at INSERT as a 500. Other C0
# controls and DEL are no part of a name or a label; multi-line text keeps tab and
# newlines.
_BAD_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_BAD_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why `value` cannot be stored as text, or None when it can."""
    found = (_BAD_TEXT if multiline else _BAD_LINE).search(value)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "must not contain NUL characters"
    if "\ud800" <= char <= "\udfff":
        return "must not contain unpaired surrogates (not valid Unicode)"
    return f"must not contain control characters (U+{ord(char):04X})"


def clean_text(value: str, *, multiline: bool = False) -> str:
    """`value` if it can be stored as text; ValueError naming what is wrong otherwise."""
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise ValueError(problem)
    return value


def _no_nul(value: str) -> str:
    return clean_text(value)


def _multiline(value: str | None) -> str | None:
    return value if value is None else clean_text(value, multiline=True)


def _trimmed_or_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


TrimmedText = Annotated[
    str | None,
    BeforeValidator(_trimmed_or_none),
    AfterValidator(lambda v: v if v is None else _no_nul(v)),
]
# One line of text that must be present (labels, names).
LineText = Annotated[str, AfterValidator(_no_nul)]
# Free text over several lines (descriptions).
MultilineText = Annotated[str, AfterValidator(_multiline)]


def at_most(limit: int) -> AfterValidator:
    """A length limit for optional text (Field(max_length) would be applied to None too)."""

    def check(value: str | None) -> str | None:
        if value is not None and len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        return value

    return AfterValidator(check)


def _country(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 3166-1 alpha-2 country code such as 'DE'")
    code = value.strip().upper()
    if code not in COUNTRY_CODES:
        raise ValueError(f"'{value[:8]}' is not an ISO 3166-1 alpha-2 country code")
    return code


def _currency(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 4217 currency code such as 'EUR'")
    code = value.strip().upper()
    if code not in CURRENCY_CODES:
        raise ValueError(f"'{value[:8]}' is not an ISO 4217 currency code")
    return code


CountryCode = Annotated[str, BeforeValidator(_country)]
CurrencyCode = Annotated[str, BeforeValidator(_currency)]

# Times before this or too far ahead are typos or hostile input, not customer history.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)


# Compiled once: re.fullmatch(str, ...) looks its pattern up in a cache on every call,
# which doubled the cost of each event's timestamp on the ingest hot path.
_RFC3339_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if not _RFC3339_RE.fullmatch(text):
            raise ValueError("must be an RFC 3339 time with an offset, e.g. 2026-03-01T10:00:00Z")
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError as exc:
            raise ValueError("is not a valid calendar time") from exc
    else:
        raise ValueError("must be an RFC 3339 time string with an offset")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must carry a UTC offset, e.g. 2026-03-01T10:00:00Z")
    try:
        # 9999-12-31T23:30:00-01:00 is a valid local time whose UTC instant lies past the
        # calendar's end (0001-01-01T00:30:00+01:00: before its start).
        parsed = parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("lies outside the years 1970-9999 once converted to UTC") from exc
    if parsed < EARLIEST:
        raise ValueError("must not be before 1970-01-01")
    return parsed


def parse_time_any(text: str) -> datetime:
    """An RFC 3339 time with an offset, past or future."""
    parsed: datetime = _rfc3339(text)
    return parsed


def parse_time(text: str) -> datetime:
    """An RFC 3339 time from the command line, validated like API input."""
    parsed: datetime = _rfc3339(text)
    return _not_future(parsed)


def _not_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + FUTURE_SLACK:
        raise ValueError("must not be in the future")
    return value


PastTimestamp = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_not_future)]

MAX_AMOUNT = Decimal("1e15")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError('must be a decimal amount, as a string like "129.90" or a number')
    try:
        # A float goes through its shortest repr, so 129.9 is 129.9, not 129.899999...
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError("is not a decimal number") from exc
    if not amount.is_finite():
        raise ValueError("must be a finite number")
    if abs(amount) >= MAX_AMOUNT:
        raise ValueError("is too large")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        raise ValueError("has more than 6 decimal places")
    return amount


def _signed_money(value: Any) -> Any:
    return _decimal(value)


def _money(value: Any) -> Any:
    amount = _decimal(value)
    if amount < 0:
        raise ValueError("must not be negative")
    return amount


Money = Annotated[Decimal, BeforeValidator(_money)]
SignedMoney = Annotated[Decimal, BeforeValidator(_signed_money)]

MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_JSON_DEPTH = 32
# A float this large comes back from PostgreSQL's jsonb as an integer of its digits, which
# no longer fits 64 bits from 2**63 up; integers are kept within 64 bits.
MAX_JSON_FLOAT = 1e15
_INT64 = 2**63


def json_problem(value: Any, *, depth: int = 0) -> str | None:
    """Why `value` is not plain JSON that PostgreSQL stores and gives back unchanged."""
    if depth > MAX_JSON_DEPTH:
        return f"nests deeper than {MAX_JSON_DEPTH} levels"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -_INT64 <= value < _INT64 else "holds an integer beyond 64 bits"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "holds NaN or an infinite number, which JSON has no value for"
        return None if abs(value) < MAX_JSON_FLOAT else "holds a number too large"
    if isinstance(value, str):
        return text_problem(value, multiline=True)
    if isinstance(value, list):
        items: list[Any] = value
        return next((p for v in items if (p := json_problem(v, depth=depth + 1))), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return "has a key that is not a string"
            problem = text_problem(key) or json_problem(item, depth=depth + 1)
            if problem:
                return problem
        return None
    return "holds a value that is not JSON"


def plain_json_object(value: Any, *, max_bytes: int = MAX_ATTRIBUTES_BYTES) -> dict[str, Any]:
    """A JSON object fit to store as jsonb; ValueError naming what is wrong otherwise."""
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    problem = json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    encoded = orjson.dumps(value)
    if len(encoded) > max_bytes:
        raise ValueError(f"must be at most {max_bytes} bytes of JSON")
    return value


def _attributes(value: Any) -> Any:
    return plain_json_object(value)


Attributes = Annotated[dict[str, Any], BeforeValidator(_attributes)]
