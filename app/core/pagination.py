"""Opaque keyset cursors and the `{"items", "next_cursor"}` page shape."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from app.core.problems import Invalid, field_error

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(after: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": after})).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The position a cursor points after; a 422 for anything not made by encode_cursor.
    An empty cursor is the first page, as if none were given."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = orjson.loads(raw)["after"]
        if isinstance(after, int) and not isinstance(after, bool) and 0 <= after < 2**63:
            return after
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        pass
    raise Invalid("The cursor is not valid", errors=[field_error(["cursor"], "not a valid cursor")])


LimitQuery = Annotated[int, Query(ge=1, le=1000, description="Page size (1-1000)")]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern="^[A-Za-z0-9_-]*$",
        description="`next_cursor` of the previous page",
    ),
]
