"""When the policy says everyone is re-evaluated, and the job for each due slot.

Slots are wall-clock times in the schedule's time zone (by default the home country's).
Every worker process checks now and then; the job row carries the slot as a unique key,
so of several processes exactly one inserts it and enqueues its work. Only the latest
due slot is run: a service that was down for a week runs one catch-up, not seven.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import service
from app.jobs.models import Job
from app.policies.schemas import PolicyDocument
from app.policies.service import current_policy


@lru_cache(maxsize=1)
def _country_zones() -> dict[str, str]:
    """ISO country code → its first listed IANA zone (tzdata's zone.tab)."""
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    zones: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            parts = line.split("\t")
            zones.setdefault(parts[0], parts[2])
    return zones


def time_zone(document: PolicyDocument) -> ZoneInfo:
    name = document.schedule.timezone
    if name is None and document.home_country:
        name = _country_zones().get(document.home_country.upper())
    return ZoneInfo(name or "UTC")


def latest_slot(document: PolicyDocument, now: datetime) -> datetime | None:
    """The latest scheduled time at or before now (UTC), or None when switched off."""
    schedule = document.schedule
    if not schedule.enabled:
        return None
    local = now.astimezone(time_zone(document))
    if schedule.every == "hour":
        slot = local.replace(minute=0, second=0, microsecond=0)
    else:
        slot = local.replace(hour=schedule.hour, minute=0, second=0, microsecond=0)
        if slot > local:
            # Aware arithmetic in one zone is wall-clock: the same hour across a DST change.
            slot -= timedelta(days=1)
    return slot.astimezone(UTC)


async def tick(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> Job | None:
    """Start the job of the latest due slot unless some process already has."""
    async with sessionmaker() as session:
        active = await current_policy(session)
        slot = latest_slot(active.document, now or datetime.now(UTC))
        if slot is None:
            return None
        key = f"recompute/{active.document.schedule.every}/{slot.isoformat()}"
        return await service.start(session, kind="recompute", as_of=None, schedule_slot=key)
