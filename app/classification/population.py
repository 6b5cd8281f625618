"""The population model: fitted once per (policy version, cut-off day, horizon), stored, reused.

The cut-off is `as_of` floored to its UTC day, so every request of a day shares one fit
and the fit never sees anything after `as_of`. The training cohort is the population
as of cut-off - window (the horizon, or less when the history is shorter than two
horizons), labelled with what it did up to the cut-off: all of it at or before `as_of`.
A stored fit of another engine version is refitted, not reused.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import fit_limits, fit_sample, repository
from app.classification.engine import PopulationModel, fit_model
from app.classification.engine.types import EnginePolicy
from app.classification.engine.validation import history_days, training_window
from app.core.db import raw_connection
from app.core.observability import log


@dataclass(frozen=True, slots=True)
class _Cached:
    stamp: datetime
    model: PopulationModel
    known_at: float  # time.monotonic() when this process fitted or loaded it


_cache: dict[tuple[int, datetime, int], _Cached] = {}


def cutoff_for(as_of: datetime) -> datetime:
    return as_of.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def model_for(
    session: AsyncSession,
    *,
    version: int,
    policy: EnginePolicy,
    as_of: datetime,
    horizon_days: int,
    reuse_fit_for: float = 0.0,
) -> PopulationModel:
    """The model for this policy version, as_of's day and horizon: cached, stored or fitted.

    Events that arrive late (before the cut-off) delete the stored fit. With
    `reuse_fit_for`, a model this process knew less than that many seconds ago
    still answers until then: background re-classification during a backfill refits
    once a minute, not on every round (each fit costs seconds of CPU).
    """
    cutoff = cutoff_for(as_of)
    key = (version, cutoff, horizon_days)
    stamp = await repository.fit_stamp(
        session, version=version, cutoff=cutoff, horizon_days=horizon_days
    )
    cached = _cache.get(key)
    if cached is not None and stamp is not None and cached.stamp == stamp:
        return cached.model
    if cached is not None and stamp is None and time.monotonic() - cached.known_at < reuse_fit_for:
        return cached.model
    stored = await repository.load_fit(
        session, version=version, cutoff=cutoff, horizon_days=horizon_days
    )
    if stored is None:
        return await _fit_and_store(
            session, version=version, policy=policy, cutoff=cutoff, horizon_days=horizon_days
        )
    model = _parse(stored[0])
    if model is None:
        return await _fit_and_store(
            session, version=version, policy=policy, cutoff=cutoff, horizon_days=horizon_days
        )
    _remember(key, stored[1], model)
    return model


def _parse(text: str) -> PopulationModel | None:
    """The stored model, or None when it was made by another engine version (or is not
    a model at all): such a fit is refitted, never reused."""
    try:
        return PopulationModel.from_json(orjson.loads(text))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None


def _remember(key: tuple[int, datetime, int], stamp: datetime, model: PopulationModel) -> None:
    if len(_cache) > 64:
        _cache.clear()
    _cache[key] = _Cached(stamp=stamp, model=model, known_at=time.monotonic())


async def _fit_and_store(
    session: AsyncSession,
    *,
    version: int,
    policy: EnginePolicy,
    cutoff: datetime,
    horizon_days: int,
) -> PopulationModel:
    # What the caller wrote so far (the default policy, on a first call) is committed
    # before the seconds of fitting: no other session waits on its row locks meanwhile.
    await session.commit()
    await fit_limits.admit(session, version=version, horizon_days=horizon_days)
    await fit_limits.acquire(session, cutoff=cutoff, horizon_days=horizon_days)
    await repository.lock_fit(session, version=version, cutoff=cutoff, horizon_days=horizon_days)
    # Another process may have fitted it while this one waited for the lock.
    stored = await repository.load_fit(
        session, version=version, cutoff=cutoff, horizon_days=horizon_days
    )
    key = (version, cutoff, horizon_days)
    reused = None if stored is None else _parse(stored[0])
    if stored is not None and reused is not None:
        await session.commit()
        _remember(key, stored[1], reused)
        return reused

    started = datetime.now(UTC)
    model = await fit(session, policy=policy, cutoff=cutoff, horizon_days=horizon_days)
    stamp = await repository.save_fit(
        session,
        version=version,
        cutoff=cutoff,
        horizon_days=horizon_days,
        model_json=orjson.dumps(model.to_json()).decode(),
    )
    await session.commit()
    _remember(key, stamp, model)
    log.info(
        "population model fitted",
        policy_version=version,
        cutoff=cutoff.isoformat(),
        horizon_days=horizon_days,
        seconds=round((datetime.now(UTC) - started).total_seconds(), 2),
        source=model.source,
    )
    return model


async def fit(
    session: AsyncSession, *, policy: EnginePolicy, cutoff: datetime, horizon_days: int
) -> PopulationModel:
    """Fit on data at or before `cutoff` only: a fixed sample of the population as of
    the cut-off (`fit_sample`), and the same customers as of the start of the newest
    window that the history allows, with what they did up to the cut-off."""
    conn = await raw_connection(session)
    if conn.is_in_transaction():
        # Compiling the plans costs more than it saves on reads of this size.
        await conn.execute("SET LOCAL jit = off")
    ids = await fit_sample.sample_ids(conn, as_of=cutoff, size=fit_sample.SAMPLE_SIZE)
    # The sample's orders once, as of the cut-off: the window's start takes its own.
    orders = await fit_sample.read_orders(conn, ids=ids, as_of=cutoff)
    current_ids, current = await fit_sample.histories(conn, ids=ids, as_of=cutoff, orders=orders)
    window = training_window(history_days(current), float(horizon_days))
    start = cutoff - timedelta(days=window)
    train_ids, train = await fit_sample.histories(conn, ids=current_ids, as_of=start, orders=orders)
    outcomes = await fit_sample.outcomes(conn, ids=train_ids, start=start, end=cutoff)
    # The optimiser is CPU-bound; a thread keeps the event loop answering meanwhile.
    return await asyncio.to_thread(
        fit_model,
        train,
        outcomes,
        current,
        horizon_days=float(horizon_days),
        policy=policy,
        window_days=window,
    )
