"""Population-wide figures, kept while the stored classifications stay the same.

The overview's matrix and splits, the churn histogram, the work list's strategy sizes
and a rule-defined segment's size each need a pass over every stored classification: on
a million customers about a second of database time, whatever the indexes. They change
only when classifications are written, which always moves `max(classifications.updated_at)`
(an index lookup, migration 0007), so a result is:

- reused while that stamp is unchanged, for at most `TTL` seconds (which bounds what a
  change that moves no stamp can leave behind: an erased customer, an edited customer
  field a rule reads);
- once the stamp has moved (or `TTL` has passed), and only if its pass took longer than
  `SLOW_PASS_SECONDS`, still shown for up to `STALE_SECONDS` after it was computed while
  one background pass computes the new figures, so a busy large installation (written
  every few seconds) does not make every view wait for a pass; pages say when their
  figures were computed. Where a pass is quick, the view waits for it and is current;
- computed while the view waits when there is none, or it is older than that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification.models import CurrentClassification

T = TypeVar("T")
TTL = 60.0
STALE_SECONDS = 60.0
# Below this, a pass costs the view less than showing figures that no longer hold.
SLOW_PASS_SECONDS = 0.25
_MAX_ENTRIES = 256

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    computed: float  # time.monotonic()
    took: float  # seconds the pass took
    computed_at: datetime
    stamp: datetime | None
    value: Any


_entries: dict[Hashable, Entry] = {}
_refreshing: dict[Hashable, asyncio.Task[None]] = {}


async def stamp(session: AsyncSession) -> datetime | None:
    """When a stored classification was last written (None: there are none)."""
    found: datetime | None = (
        await session.execute(select(func.max(CurrentClassification.updated_at)))
    ).scalar_one()
    return found


def _store(key: Hashable, entry: Entry) -> None:
    if key not in _entries and len(_entries) >= _MAX_ENTRIES:
        _entries.clear()
    _entries[key] = entry


async def _compute(
    session: AsyncSession, key: Hashable, compute: Callable[[AsyncSession], Awaitable[T]]
) -> Entry:
    current = await stamp(session)
    started = time.monotonic()
    value = await compute(session)
    finished = time.monotonic()
    entry = Entry(finished, finished - started, datetime.now(UTC), current, value)
    _store(key, entry)
    return entry


async def _refresh(
    session: AsyncSession, key: Hashable, compute: Callable[[AsyncSession], Awaitable[Any]]
) -> None:
    # Its own session on the same engine: the request's ends with the response.
    engine = session.bind
    try:
        async with AsyncSession(engine, expire_on_commit=False) as own:
            await _compute(own, key, compute)
    except Exception:  # the next view computes it while waiting; nothing is lost
        log.exception("refreshing dashboard figures %r failed", key)
    finally:
        _refreshing.pop(key, None)


async def entry(
    session: AsyncSession, key: Hashable, compute: Callable[[AsyncSession], Awaitable[Any]]
) -> Entry:
    """compute(session)'s result with when it was computed (see the module's docstring)."""
    current = await stamp(session)
    found = _entries.get(key)
    if found is None:
        return await _compute(session, key, compute)
    age = time.monotonic() - found.computed
    if found.stamp == current and age < TTL:
        return found
    slow = found.took >= SLOW_PASS_SECONDS
    if slow and age < STALE_SECONDS and session.bind is not None:
        if key not in _refreshing:
            _refreshing[key] = asyncio.create_task(_refresh(session, key, compute))
        return found
    return await _compute(session, key, compute)


async def cached(
    session: AsyncSession, key: Hashable, compute: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    value: T = (await entry(session, key, compute)).value
    return value


async def settled() -> None:
    """Once every background pass running now has finished."""
    while _refreshing:
        await asyncio.gather(*_refreshing.values(), return_exceptions=True)


def forget() -> None:
    _entries.clear()
