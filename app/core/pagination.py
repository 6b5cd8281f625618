"""Opaque keyset cursors and the `{"items", "next_cursor"}` page shape."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeGuard, TypeVar

import orjson
from pydantic import BaseModel

from app.core.problems import Invalid, field_error

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode(payload: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def _decode(cursor: str) -> Any:
    return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def _invalid() -> Invalid:
    return Invalid(
        "The cursor is not valid", errors=[field_error(["cursor"], "not a valid cursor")]
    )


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def encode_cursor(after: int) -> str:
    return _encode({"after": after})


def decode_cursor(cursor: str | None) -> int | None:
    """The position a cursor points after; a 422 for anything not made by encode_cursor.
    An empty cursor is the first page, as if none were given."""
    if not cursor:
        return None
    try:
        after = _decode(cursor)["after"]
        if _is_int(after) and 0 <= after < 2**63:
            return after
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        pass
    raise _invalid()


def encode_position(at: datetime, row_id: int) -> str:
    """A cursor after (time, id), exact to the microsecond (a float timestamp is not)."""
    return _encode({"at": (at - _EPOCH) // timedelta(microseconds=1), "id": row_id})


def decode_position(cursor: str | None) -> tuple[datetime, int] | None:
    """The (time, id) a page continues after; empty is the first page, anything not made
    by encode_position a 422."""
    if not cursor:
        return None
    try:
        data = _decode(cursor)
        micros, row_id = data["at"], data["id"]
        # Stored times are never before 1970 (the validators refuse them).
        if _is_int(micros) and _is_int(row_id) and 0 <= micros < 2**62 and 0 <= row_id < 2**63:
            return _EPOCH + timedelta(microseconds=micros), row_id
    except (binascii.Error, ValueError, KeyError, TypeError, OverflowError):
        pass
    raise _invalid()
