"""The ledger of moves per day counts what one grouped scan of the changes counts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.dashboard import flows

NOW = datetime(2026, 6, 15, 13, 30, tzinfo=UTC)


async def _customers(session: AsyncSession, n: int) -> None:
    await session.execute(
        text("INSERT INTO customers (external_id) SELECT 'c-' || i FROM generate_series(1, :n) i"),
        {"n": n},
    )


async def _change(
    session: AsyncSession, customer: int, as_of: datetime, src: str | None, dst: str
) -> None:
    await session.execute(
        text(
            "INSERT INTO classification_changes (customer_id, as_of, policy_version, from_tier,"
            " to_tier, from_stage, to_stage) VALUES (:c, :a, 1, :ft, 'mid', :fs, :ts)"
        ),
        {"c": customer, "a": as_of, "ft": src and "low", "fs": src, "ts": dst},
    )


async def _scanned(session: AsyncSession, since: datetime) -> Counter[tuple[object, ...]]:
    rows = await session.execute(
        text(
            "SELECT date_trunc('day', as_of, 'UTC'), from_tier, from_stage, to_tier, to_stage,"
            " count(*) FROM classification_changes WHERE as_of > :since GROUP BY 1, 2, 3, 4, 5"
        ),
        {"since": since},
    )
    return Counter({tuple(r[:5]): int(r[5]) for r in rows})


async def _counted(session: AsyncSession, since: datetime) -> Counter[tuple[object, ...]]:
    return Counter({tuple(r[:5]): r[5] for r in await flows.since(session, since=since)})


async def test_the_ledger_follows_appended_changes_ended_days_and_a_reset_table(
    session: AsyncSession,
) -> None:
    await _customers(session, 3)
    since = NOW - timedelta(days=7)
    # On the window's first day before and after its start, on whole days, today.
    for days, hours, src, dst in [
        (7, 1, None, "new"),  # before the start: out
        (7, -1, None, "new"),  # after the start, on its first day
        (6, 0, None, "new"),
        (5, 3, "new", "returning"),
        (5, 3, "new", "returning"),
        (1, 0, "returning", "loyal"),
        (0, 0, "loyal", "at_risk"),
    ]:
        await _change(session, 1, NOW - timedelta(days=days, hours=hours), src, dst)
    await session.commit()
    assert await _counted(session, since) == await _scanned(session, since)

    # Appended since: on a past day (a recompute as of an earlier time) and today.
    await _change(session, 2, NOW - timedelta(days=3), None, "new")
    await _change(session, 2, NOW - timedelta(minutes=5), "new", "returning")
    await session.commit()
    assert await _counted(session, since) == await _scanned(session, since)

    # The next day: the window moves on.
    later = NOW + timedelta(days=1)
    await _change(session, 3, later - timedelta(hours=1), None, "new")
    await session.commit()
    window = later - timedelta(days=7)
    assert await _counted(session, window) == await _scanned(session, window)
    # A longer window than the ledger covers.
    wide = later - timedelta(days=30)
    assert await _counted(session, wide) == await _scanned(session, wide)

    # Emptied and refilled with the ids starting again (as tests and restores do).
    await session.execute(text("TRUNCATE classification_changes RESTART IDENTITY CASCADE"))
    await _change(session, 1, NOW - timedelta(days=2), None, "loyal")
    await session.commit()
    assert await _counted(session, since) == await _scanned(session, since)
    assert sum((await _counted(session, since)).values()) == 1
