"""Bounds on population fitting, so no caller can make the service fit over and over.

A fit costs seconds of CPU. Only the policy's horizon and a small configured set may be
fitted, one fit runs at a time across every process, and a request waits for it only so
long before it is told to come back (503 with Retry-After). Stored fits are capped by a
trigger (migration 0004), oldest evicted first.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import raw_connection
from app.core.problems import Invalid, ServiceUnavailable, field_error
from app.core.settings import get_settings
from app.policies.service import policy_version

_FIT_LOCK = 4_170_004
_POLL_SECONDS = 0.1


async def admit(session: AsyncSession, *, version: int, horizon_days: int) -> None:
    """422 for a horizon that may not be fitted (any horizon already stored is served)."""
    allowed = {*get_settings().fit_horizons}
    allowed.add((await policy_version(session, version=version)).document.horizon_days)
    if horizon_days not in allowed:
        listed = ", ".join(str(h) for h in sorted(allowed))
        raise Invalid(
            "This horizon has no population model",
            errors=[field_error(["horizon_days"], f"must be one of {listed}")],
        )


async def acquire(session: AsyncSession, *, cutoff: datetime, horizon_days: int) -> None:
    """Take the one fitting slot for the rest of the transaction, or 503 after a while."""
    conn = await raw_connection(session)
    deadline = time.monotonic() + get_settings().fit_wait_seconds
    while not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _FIT_LOCK):
        if time.monotonic() >= deadline:
            raise ServiceUnavailable(
                f"A population model is being fitted (for {cutoff.date()}, {horizon_days} "
                "days); retry shortly",
                headers={"Retry-After": "10"},
            )
        await asyncio.sleep(_POLL_SECONDS)
