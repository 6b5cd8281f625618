"""Moves between classes per day, kept as a ledger so a page reads only what is new.

The movements chart and the cells' sizes over time count every change of a window (on a
million customers, a million and more rows for 90 days). A change of a past day is not
edited, so the ledger keeps the complete days' counts and each view reads only:

- the changes appended since (primary key above the ledger's last id, normally none or a
  few), added to their days;
- today's changes and the part of the window's first day after its start, live (two
  short ranges of `ix_classification_changes_as_of`).

The ledger is rebuilt when the row it ended at or the oldest change is no longer the one
it saw (a truncated or reset table), when a window reaches further back than it covers,
and at the latest after `REBUILD_SECONDS`, which bounds what it can miss: the changes of
an erased customer (deleted with them) and a change committed after a newer one was
already counted (concurrent writers).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.dashboard import repository

REBUILD_SECONDS = 300.0
DAY = timedelta(days=1)

Key = tuple[datetime, str | None, str | None, str, str]


@dataclass(slots=True)
class _Ledger:
    first_day: datetime
    end_day: datetime  # complete days [first_day, end_day), changes with id <= last_id
    last_id: int
    mark: repository.ChangeMark
    built: float
    counts: dict[Key, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, rows: Sequence[Any]) -> None:
        for day, from_tier, from_stage, to_tier, to_stage, n in rows:
            self.counts[(day, from_tier, from_stage, to_tier, to_stage)] += int(n)


_ledger: _Ledger | None = None
_lock = asyncio.Lock()


def start_of_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def _build(session: AsyncSession, *, first_day: datetime, today: datetime) -> _Ledger:
    mark = await repository.change_mark(session)
    ledger = _Ledger(
        first_day=first_day, end_day=today, last_id=mark.last_id, mark=mark, built=time.monotonic()
    )
    ledger.add(
        await repository.day_flows(session, start=first_day, end=today, up_to_id=mark.last_id)
    )
    return ledger


async def _current(session: AsyncSession, *, first_day: datetime, today: datetime) -> _Ledger:
    global _ledger
    ledger = _ledger
    if (
        ledger is None
        or time.monotonic() - ledger.built > REBUILD_SECONDS
        or first_day < ledger.first_day
        or today < ledger.end_day
        or not await repository.same_mark(session, ledger.mark)
    ):
        _ledger = ledger = await _build(session, first_day=first_day, today=today)
        return ledger
    if ledger.end_day < today:  # a day (or more) has ended since: its changes move in
        ledger.add(
            await repository.day_flows(
                session, start=ledger.end_day, end=today, up_to_id=ledger.last_id
            )
        )
        ledger.end_day = today
    mark = await repository.change_mark(session)
    if mark.last_id > ledger.last_id:
        ledger.add(
            await repository.day_flows(
                session,
                start=ledger.first_day,
                end=ledger.end_day,
                after_id=ledger.last_id,
                up_to_id=mark.last_id,
            )
        )
        ledger.last_id = mark.last_id
        ledger.mark = repository.ChangeMark(
            first_id=ledger.mark.first_id,
            first_changed_at=ledger.mark.first_changed_at,
            last_id=mark.last_id,
            last_changed_at=mark.last_changed_at,
        )
    return ledger


async def since(
    session: AsyncSession, *, since: datetime, now: datetime
) -> list[tuple[datetime, str | None, str | None, str, str, int]]:
    """(day, from tier, from stage, to tier, to stage, count) of the changes after `since`,
    exactly as one grouped scan of them would count."""
    today = start_of_day(now)
    first_full = start_of_day(since) + DAY
    totals: dict[Key, int] = defaultdict(int)
    if first_full < today:
        async with _lock:
            ledger = await _current(session, first_day=first_full, today=today)
            for key, n in ledger.counts.items():
                if first_full <= key[0] < today:
                    totals[key] += n
        live = [
            *await repository.day_flows(session, after=since, end=first_full),
            *await repository.day_flows(session, start=today),
        ]
    else:
        live = list(await repository.day_flows(session, after=since))
    for day, from_tier, from_stage, to_tier, to_stage, n in live:
        totals[(day, from_tier, from_stage, to_tier, to_stage)] += int(n)
    return [(*key, n) for key, n in totals.items() if n]


def forget() -> None:
    global _ledger
    _ledger = None
