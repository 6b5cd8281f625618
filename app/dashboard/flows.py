"""Moves between classes per day, kept as a ledger so a view reads only what is new.

The movements chart and the cells' sizes over time count every change of a window (on a
million customers, a million and more rows for 90 days). Changes are only appended, so
the ledger keeps counts per day and each view reads:

- the changes appended since (primary key above the ledger's last id: normally none or a
  few hundred), added to their days;
- the part of the window's first day after its start, live (a short range of
  `ix_classification_changes_as_of`).

It is built again while the view waits when the row it ended at or the oldest change is
no longer the one it saw (a truncated or restored table) or a window reaches further back
than it covers; and, in the background while views go on using it, every
`REBUILD_SECONDS`, which bounds what it can miss: the changes of an erased customer
(deleted with them) and a change committed after a newer one was already counted
(concurrent writers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.dashboard import repository

REBUILD_SECONDS = 300.0
DAY = timedelta(days=1)

Key = tuple[datetime, str | None, str | None, str, str]


@dataclass(slots=True)
class _Ledger:
    first_day: datetime  # counts changes with as_of >= first_day and id <= last_id
    last_id: int
    mark: repository.ChangeMark
    built: float
    counts: dict[Key, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, rows: Sequence[Any]) -> None:
        for day, from_tier, from_stage, to_tier, to_stage, n in rows:
            self.counts[(day, from_tier, from_stage, to_tier, to_stage)] += int(n)


_ledger: _Ledger | None = None
_lock = asyncio.Lock()
_rebuilding: asyncio.Task[None] | None = None
log = logging.getLogger(__name__)


def start_of_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def _build(session: AsyncSession, *, first_day: datetime) -> _Ledger:
    mark = await repository.change_mark(session)
    ledger = _Ledger(first_day=first_day, last_id=mark.last_id, mark=mark, built=time.monotonic())
    ledger.add(await repository.day_flows(session, start=first_day, up_to_id=mark.last_id))
    return ledger


async def _rebuild(session: AsyncSession, first_day: datetime) -> None:
    global _ledger, _rebuilding
    try:
        async with AsyncSession(session.bind) as own:
            fresh = await _build(own, first_day=first_day)
        async with _lock:
            _ledger = fresh
    except Exception:  # the ledger in use stays; the next view tries again
        log.exception("rebuilding the dashboard's moves ledger failed")
    finally:
        _rebuilding = None


async def _current(session: AsyncSession, *, first_day: datetime) -> _Ledger:
    global _ledger, _rebuilding
    ledger = _ledger
    if (
        ledger is None
        or first_day < ledger.first_day
        or not await repository.same_mark(session, ledger.mark)
    ):
        _ledger = ledger = await _build(session, first_day=first_day)
        return ledger
    mark = await repository.change_mark(session)
    if mark.last_id > ledger.last_id:
        ledger.add(
            await repository.day_flows(
                session, start=ledger.first_day, after_id=ledger.last_id, up_to_id=mark.last_id
            )
        )
        ledger.last_id = mark.last_id
        ledger.mark = replace(
            ledger.mark, last_id=mark.last_id, last_changed_at=mark.last_changed_at
        )
    age = time.monotonic() - ledger.built
    if age > REBUILD_SECONDS and _rebuilding is None and session.bind is not None:
        _rebuilding = asyncio.create_task(_rebuild(session, ledger.first_day))
    return ledger


async def since(
    session: AsyncSession, *, since: datetime
) -> list[tuple[datetime, str | None, str | None, str, str, int]]:
    """(day, from tier, from stage, to tier, to stage, count) of the changes after `since`,
    as one grouped scan of them counts."""
    first_full = start_of_day(since) + DAY
    totals: dict[Key, int] = defaultdict(int)
    async with _lock:
        ledger = await _current(session, first_day=first_full)
        for key, n in ledger.counts.items():
            if key[0] >= first_full:
                totals[key] += n
    for day, from_tier, from_stage, to_tier, to_stage, n in await repository.day_flows(
        session, after=since, end=first_full
    ):
        totals[(day, from_tier, from_stage, to_tier, to_stage)] += int(n)
    return [(*key, n) for key, n in totals.items() if n]


async def settled() -> None:
    """Once a background rebuild running now has finished."""
    while _rebuilding is not None:
        await asyncio.gather(_rebuilding, return_exceptions=True)


def forget() -> None:
    global _ledger
    _ledger = None
