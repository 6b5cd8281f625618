"""Population-wide aggregates, kept while the stored classifications stay the same.

The overview's split by geography and type, the churn histogram, change flows, the work
list's strategy sizes and a rule-defined segment's size each read every stored
classification (or every change of a window); on a million customers that is a second
of CPU per page view. They change when classifications are written, which always moves
`max(classifications.updated_at)` (an index lookup, migration 0007), so a result is
reused while that stamp is unchanged — and for at most `TTL` seconds, which bounds what
a change that moves no stamp (an erased customer, an edited customer field a rule reads)
can leave behind. The tier x stage matrix is never cached: it is the segments overview
itself, read live like `GET /v1/segments/overview`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification.models import CurrentClassification

T = TypeVar("T")
TTL = 60.0
_MAX_ENTRIES = 256

_entries: dict[Hashable, tuple[float, datetime | None, Any]] = {}


async def stamp(session: AsyncSession) -> datetime | None:
    """When a stored classification was last written (None: there are none)."""
    found: datetime | None = (
        await session.execute(select(func.max(CurrentClassification.updated_at)))
    ).scalar_one()
    return found


async def cached(session: AsyncSession, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
    """compute()'s result, reused while the classifications' stamp is unchanged."""
    current = await stamp(session)
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and entry[1] == current and now - entry[0] < TTL:
        value: T = entry[2]
        return value
    value = await compute()
    if len(_entries) >= _MAX_ENTRIES:
        _entries.clear()
    _entries[key] = (now, current, value)
    return value


def forget() -> None:
    _entries.clear()
