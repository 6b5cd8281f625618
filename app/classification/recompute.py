"""Bulk re-classification split into id ranges (plan / run_range / run_customers)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import population, repository
from app.classification.engine import classify
from app.classification.jobs import RecomputeSummary
from app.classification.repository import HistoryBatch
from app.classification.service import engine_policy
from app.core.db import raw_connection
from app.policies.service import current_policy, policy_version

CHUNK = 50_000

_STAGE_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS recompute_rows (
    customer_id bigint PRIMARY KEY,
    tier text, tier_score float8, stage text, strategy text, churn_probability float8,
    orders int, revenue numeric, expected_revenue numeric, segments jsonb
) ON COMMIT DELETE ROWS
"""

_RECORD_CHANGES = """
INSERT INTO classification_changes
       (customer_id, as_of, policy_version, from_tier, to_tier, from_stage, to_stage)
SELECT r.customer_id, $1, $2, old.tier, r.tier, old.stage, r.stage
  FROM recompute_rows r
  JOIN customers c ON c.id = r.customer_id
  LEFT JOIN classifications old ON old.customer_id = r.customer_id
 WHERE (old.customer_id IS NULL OR old.tier <> r.tier OR old.stage <> r.stage)
   AND (old.as_of IS NULL OR old.as_of <= $1)
RETURNING (from_tier IS DISTINCT FROM to_tier) AS tier_changed,
          (from_stage IS DISTINCT FROM to_stage) AS stage_changed
"""

_STORE = """
INSERT INTO classifications AS old
       (customer_id, as_of, policy_version, tier, tier_score, stage, strategy,
        churn_probability, orders, revenue, expected_revenue, segments, updated_at)
SELECT r.customer_id, $1, $2, tier, tier_score, stage, strategy, churn_probability,
       orders, revenue, expected_revenue, segments, now()
  FROM recompute_rows r JOIN customers c ON c.id = r.customer_id
ON CONFLICT (customer_id) DO UPDATE SET
    as_of = EXCLUDED.as_of, policy_version = EXCLUDED.policy_version,
    tier = EXCLUDED.tier, tier_score = EXCLUDED.tier_score, stage = EXCLUDED.stage,
    strategy = EXCLUDED.strategy, churn_probability = EXCLUDED.churn_probability,
    orders = EXCLUDED.orders, revenue = EXCLUDED.revenue,
    expected_revenue = EXCLUDED.expected_revenue, segments = EXCLUDED.segments,
    updated_at = now()
 WHERE old.as_of <= EXCLUDED.as_of
"""


@dataclass(frozen=True, slots=True)
class RecomputePlan:
    as_of: datetime
    policy_version: int
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class ChunkResult:
    customers: int
    tier_changed: int
    stage_changed: int


async def plan(
    session: AsyncSession, *, as_of: datetime | None = None, chunk: int = CHUNK
) -> RecomputePlan:
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    active = await current_policy(session)
    await population.model_for(
        session,
        version=active.version,
        policy=engine_policy(active),
        as_of=as_of,
        horizon_days=active.document.horizon_days,
    )
    lo, hi = await repository.id_bounds(session)
    ranges = []
    after = lo - 1
    while after < hi:
        upto = min(after + chunk, hi)
        ranges.append((after, upto))
        after = upto
    return RecomputePlan(as_of=as_of, policy_version=active.version, ranges=tuple(ranges))


async def _store(
    session: AsyncSession, batch: HistoryBatch, *, as_of: datetime, version: int
) -> ChunkResult:
    active = await policy_version(session, version=version)
    policy = engine_policy(active)
    model = await population.model_for(
        session,
        version=version,
        policy=policy,
        as_of=as_of,
        horizon_days=active.document.horizon_days,
    )
    conn = await raw_connection(session)
    await conn.execute(_STAGE_TABLE)
    await conn.execute("TRUNCATE recompute_rows")
    if not batch.customers:
        return ChunkResult(customers=0, tier_changed=0, stage_changed=0)
    results = classify(batch.histories, [c.profile for c in batch.customers], model, policy)
    await conn.copy_records_to_table(
        "recompute_rows",
        records=[
            (
                c.id,
                r.tier,
                r.tier_score,
                r.stage,
                r.strategy,
                r.churn_probability,
                c.orders,
                c.revenue,
                Decimal(repr(round(r.expected_revenue, 2))),
                orjson.dumps(dict(r.segments)).decode(),
            )
            for c, r in zip(batch.customers, results, strict=True)
        ],
    )
    changes = await conn.fetch(_RECORD_CHANGES, as_of, version)
    await conn.execute(_STORE, as_of, version)
    return ChunkResult(
        customers=len(batch.customers),
        tier_changed=sum(1 for c in changes if c["tier_changed"]),
        stage_changed=sum(1 for c in changes if c["stage_changed"]),
    )


async def run_range(
    session: AsyncSession, plan: RecomputePlan, *, after: int, upto: int
) -> ChunkResult:
    batch = await repository.histories_in_range(session, after=after, upto=upto, as_of=plan.as_of)
    return await _store(session, batch, as_of=plan.as_of, version=plan.policy_version)


async def run_customers(
    session: AsyncSession, *, ids: Sequence[int], as_of: datetime | None = None
) -> ChunkResult:
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    active = await current_policy(session)
    conn = await raw_connection(session)
    rows = await conn.fetch("SELECT external_id FROM customers WHERE id = ANY($1)", list(ids))
    found = await repository.histories_for(
        session, external_ids=[r["external_id"] for r in rows], as_of=as_of
    )
    batch = repository.to_batch([r for r, _ in found.values()], as_of=as_of)
    return await _store(session, batch, as_of=as_of, version=active.version)


async def recompute(
    session: AsyncSession,
    *,
    as_of: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RecomputeSummary:
    started = time.perf_counter()
    the_plan = await plan(session, as_of=as_of)
    await session.commit()
    total = tier = stage = 0
    span = sum(u - a for a, u in the_plan.ranges)
    for after, upto in the_plan.ranges:
        result = await run_range(session, the_plan, after=after, upto=upto)
        await session.commit()
        total += result.customers
        tier += result.tier_changed
        stage += result.stage_changed
        if progress is not None:
            progress(upto - after, span)
    return RecomputeSummary(
        customers=total,
        seconds=time.perf_counter() - started,
        tier_changed=tier,
        stage_changed=stage,
        policy_version=the_plan.policy_version,
        as_of=the_plan.as_of,
    )
