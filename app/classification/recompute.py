"""Bulk re-classification: customers as of T, stored with the history of their changes.

`plan` fixes the policy version and T, makes sure the population model for them is
stored (so ranges run in other processes reuse it) and splits the id space into ranges.
`run_range` and `run_customers` classify and store one range or one list of customers
inside the caller's transaction; `recompute` runs every range, one transaction each,
reading the first ones while it fits the model.

Storing is "exactly once in effect": a change row is written only where the stored tier
or stage differs, so running a range again adds none, and a stored classification with
a newer `as_of` is left alone. A customer erased while a range runs is skipped. A
customer whose numbers do not fit the stored columns (revenue beyond NUMERIC(24,6), an
infinite expectation) keeps the classification stored before, is counted in `skipped`
and logged by internal id: one such customer never costs the rest of the run.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import population, range_histories, repository, store
from app.classification.engine.columns import classify_columns
from app.classification.engine.model import PopulationModel
from app.classification.engine.types import EnginePolicy
from app.classification.range_histories import RangeBatch
from app.classification.service import engine_policy
from app.core.db import raw_connection
from app.core.observability import log
from app.policies.service import ActivePolicy, current_policy, policy_version

CHUNK = 50_000
# Ranges classified at once by `recompute`, each on its own connection.
WORKERS = 2


@dataclass(frozen=True, slots=True)
class RecomputePlan:
    as_of: datetime  # UTC
    policy_version: int
    ranges: tuple[tuple[int, int], ...]  # (after, upto]: after < customers.id <= upto


@dataclass(frozen=True, slots=True)
class ChunkResult:
    customers: int
    tier_changed: int
    stage_changed: int
    # Classified but not stored: numbers beyond the stored columns' range.
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class RecomputeSummary:
    customers: int
    seconds: float
    tier_changed: int
    stage_changed: int
    policy_version: int
    as_of: datetime
    skipped: int = 0

    def line(self) -> str:
        text = (
            f"classified {self.customers} customers in {self.seconds:.1f} s as of "
            f"{self.as_of.isoformat().replace('+00:00', 'Z')} (policy v{self.policy_version}); "
            f"tier changed {self.tier_changed}, stage changed {self.stage_changed}"
        )
        if self.skipped:
            text += f"; {self.skipped} not stored (values out of range, see the log)"
        return text


def _utc(as_of: datetime | None) -> datetime:
    return (as_of or datetime.now(UTC)).astimezone(UTC)


async def _model(
    session: AsyncSession, active: ActivePolicy, as_of: datetime, *, reuse_fit_for: float = 0.0
) -> tuple[EnginePolicy, PopulationModel]:
    policy = engine_policy(active)
    model = await population.model_for(
        session,
        version=active.version,
        policy=policy,
        as_of=as_of,
        horizon_days=active.document.horizon_days,
        reuse_fit_for=reuse_fit_for,
    )
    return policy, model


def split(lo: int, hi: int, chunk: int) -> tuple[tuple[int, int], ...]:
    """(after, upto] ranges of at most `chunk` ids covering lo..hi; none when empty."""
    if hi < lo or hi <= 0:
        return ()
    return tuple((after, min(after + chunk, hi)) for after in range(lo - 1, hi, chunk))


async def plan(
    session: AsyncSession, *, as_of: datetime | None = None, chunk: int = CHUNK
) -> RecomputePlan:
    """Policy, T, the stored population model and the id ranges of one recompute."""
    active, the_plan = await _layout(session, as_of=as_of, chunk=chunk)
    await _model(session, active, the_plan.as_of)
    return the_plan


async def _layout(
    session: AsyncSession, *, as_of: datetime | None, chunk: int
) -> tuple[ActivePolicy, RecomputePlan]:
    """The policy in force, T and the id ranges, without the model."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    as_of = _utc(as_of)
    active = await current_policy(session)
    lo, hi = await repository.id_bounds(session)
    ranges = split(lo, hi, chunk)
    return active, RecomputePlan(as_of=as_of, policy_version=active.version, ranges=ranges)


async def prepare_model(
    session: AsyncSession, *, as_of: datetime, reuse_fit_for: float = 0.0
) -> None:
    """The population model for `as_of` loaded or fitted (a fit commits its own work),
    before a caller takes locks it would otherwise hold through the fit."""
    await _model(session, await current_policy(session), _utc(as_of), reuse_fit_for=reuse_fit_for)


async def run_range(
    session: AsyncSession, plan: RecomputePlan, *, after: int, upto: int
) -> ChunkResult:
    """Classify and store every customer with after < id <= upto; does not commit."""
    active = await policy_version(session, version=plan.policy_version)
    modelled = asyncio.get_running_loop().create_future()
    modelled.set_result(await _model(session, active, plan.as_of))
    return await _store_range(
        session, after=after, upto=upto, as_of=plan.as_of, version=active.version, model=modelled
    )


async def _store_range(
    session: AsyncSession,
    *,
    after: int,
    upto: int,
    as_of: datetime,
    version: int,
    model: asyncio.Future[tuple[EnginePolicy, PopulationModel]],
) -> ChunkResult:
    """`run_range` with the model awaited only once the range is read (it may still be
    fitting elsewhere)."""
    conn = await raw_connection(session)
    # A range lost in a crash before its commit reached the disk is simply run again:
    # the commit need not wait for the WAL flush.
    await conn.execute("SET LOCAL synchronous_commit = off")
    batch = await range_histories.read_range(conn, after=after, upto=upto, as_of=as_of)
    policy, fitted = await asyncio.shield(model)
    return await _classify_and_store(
        conn, batch, policy=policy, model=fitted, as_of=as_of, version=version
    )


async def run_customers(
    session: AsyncSession,
    *,
    ids: Sequence[int],
    as_of: datetime | None = None,
    reuse_fit_for: float = 0.0,
) -> ChunkResult:
    """The same for these internal customer ids (unknown ones are ignored); no commit."""
    as_of = _utc(as_of)
    active = await current_policy(session)
    policy, model = await _model(session, active, as_of, reuse_fit_for=reuse_fit_for)
    conn = await raw_connection(session)
    batch = await range_histories.read_ids(conn, ids=ids, as_of=as_of)
    return await _classify_and_store(
        conn, batch, policy=policy, model=model, as_of=as_of, version=active.version
    )


async def recompute(
    session: AsyncSession,
    *,
    as_of: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int = WORKERS,
    chunk: int = CHUNK,
) -> RecomputeSummary:
    """Classify every customer as of `as_of`, committing after each range.

    Ranges run on `workers` more connections of this session's engine at once: the
    reading and writing are PostgreSQL's work, and a second backend keeps the second
    core busy while one waits for the other, or for this process. Meanwhile this session
    loads or fits the population model: the first ranges are read while it fits (this
    process's work, in a thread) and wait for it only to be classified.
    """
    started = time.perf_counter()
    active, the_plan = await _layout(session, as_of=as_of, chunk=chunk)
    ranges = the_plan.ranges
    await session.commit()
    span = ranges[-1][1] - ranges[0][0] if ranges else 0
    pending = deque(ranges)
    results: list[ChunkResult] = []
    model = asyncio.ensure_future(_model(session, active, the_plan.as_of))

    async def work(worker: AsyncSession) -> None:
        while pending:
            after, upto = pending.popleft()
            result = await _store_range(
                worker,
                after=after,
                upto=upto,
                as_of=the_plan.as_of,
                version=active.version,
                model=model,
            )
            await worker.commit()
            results.append(result)
            if progress is not None:
                progress(upto - after, span)

    if session.bind is None:
        raise ValueError("recompute needs a session bound to an engine")
    crew = [
        AsyncSession(bind=session.bind, expire_on_commit=False)
        for _ in range(min(workers, len(ranges)))
    ]
    tasks = [model, *(asyncio.ensure_future(work(worker)) for worker in crew)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # The first failure is the caller's, as it is: the other ranges stop with it.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        for worker in crew:
            await worker.close()
    return RecomputeSummary(
        customers=sum(r.customers for r in results),
        seconds=time.perf_counter() - started,
        tier_changed=sum(r.tier_changed for r in results),
        stage_changed=sum(r.stage_changed for r in results),
        policy_version=the_plan.policy_version,
        as_of=the_plan.as_of,
        skipped=sum(r.skipped for r in results),
    )


async def _classify_and_store(
    conn: asyncpg.Connection,
    batch: RangeBatch,
    *,
    policy: EnginePolicy,
    model: PopulationModel,
    as_of: datetime,
    version: int,
) -> ChunkResult:
    if not len(batch):
        return ChunkResult(customers=0, tier_changed=0, stage_changed=0)
    result = classify_columns(batch.histories, batch.profiles, model, policy)
    rows = store.rows(batch, result)
    if rows.out_of_range:
        log.warning(
            "classifications not stored: values out of range",
            customer_ids=rows.out_of_range[:20],
            count=len(rows.out_of_range),
            as_of=as_of.isoformat(),
        )
    # Erased customers drop out of the merge (it locks the rows of those it stores).
    await store.stage(conn, rows)
    tier_changed, stage_changed = await store.merge(conn, rows, as_of=as_of, version=version)
    return ChunkResult(
        customers=len(batch),
        tier_changed=tier_changed,
        stage_changed=stage_changed,
        skipped=len(rows.out_of_range),
    )
