"""The paging query parameters of the list endpoints (the cursors are `pagination`'s)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

LimitQuery = Annotated[int, Query(ge=1, le=1000, description="Page size (1-1000)")]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern="^[A-Za-z0-9_-]*$",
        description="`next_cursor` of the previous page",
    ),
]
