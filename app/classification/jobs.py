"""Bulk re-classification: every customer as of T, stored with the history of changes.

Customers are read in id ranges (one aggregate query each), classified in one vectorised
engine call per range, and written with COPY into a temporary table and two set-based
statements. The whole run is one transaction: it lands completely or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import population, repository
from app.classification.engine import classify
from app.classification.service import engine_policy
from app.core.db import raw_connection
from app.policies.service import current_policy

CHUNK = 50_000

_STAGE_TABLE = """
CREATE TEMP TABLE recompute_rows (
    customer_id bigint PRIMARY KEY,
    tier text, tier_score float8, stage text, strategy text, churn_probability float8,
    orders int, revenue numeric, expected_revenue numeric, segments jsonb
) ON COMMIT DROP
"""

_RECORD_CHANGES = """
INSERT INTO classification_changes
       (customer_id, as_of, policy_version, from_tier, to_tier, from_stage, to_stage)
SELECT r.customer_id, $1, $2, old.tier, r.tier, old.stage, r.stage
  FROM recompute_rows r
  LEFT JOIN classifications old ON old.customer_id = r.customer_id
 WHERE old.customer_id IS NULL OR old.tier <> r.tier OR old.stage <> r.stage
RETURNING (from_tier IS DISTINCT FROM to_tier) AS tier_changed,
          (from_stage IS DISTINCT FROM to_stage) AS stage_changed
"""

_STORE = """
INSERT INTO classifications
       (customer_id, as_of, policy_version, tier, tier_score, stage, strategy,
        churn_probability, orders, revenue, expected_revenue, segments, updated_at)
SELECT customer_id, $1, $2, tier, tier_score, stage, strategy, churn_probability,
       orders, revenue, expected_revenue, segments, now()
  FROM recompute_rows
ON CONFLICT (customer_id) DO UPDATE SET
    as_of = EXCLUDED.as_of, policy_version = EXCLUDED.policy_version,
    tier = EXCLUDED.tier, tier_score = EXCLUDED.tier_score, stage = EXCLUDED.stage,
    strategy = EXCLUDED.strategy, churn_probability = EXCLUDED.churn_probability,
    orders = EXCLUDED.orders, revenue = EXCLUDED.revenue,
    expected_revenue = EXCLUDED.expected_revenue, segments = EXCLUDED.segments,
    updated_at = now()
"""


@dataclass(frozen=True, slots=True)
class RecomputeSummary:
    customers: int
    seconds: float
    tier_changed: int
    stage_changed: int
    policy_version: int
    as_of: datetime

    def line(self) -> str:
        return (
            f"classified {self.customers} customers in {self.seconds:.1f} s as of "
            f"{self.as_of.isoformat().replace('+00:00', 'Z')} (policy v{self.policy_version}); "
            f"tier changed {self.tier_changed}, stage changed {self.stage_changed}"
        )


async def recompute(
    session: AsyncSession,
    *,
    as_of: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RecomputeSummary:
    """Classify every customer as of `as_of` and store it as their current classification."""
    started = time.perf_counter()
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    active = await current_policy(session)
    policy = engine_policy(active)
    horizon = active.document.horizon_days
    model = await population.model_for(
        session, version=active.version, policy=policy, as_of=as_of, horizon_days=horizon
    )
    conn = await raw_connection(session)
    await conn.execute(_STAGE_TABLE)
    lo, hi = await repository.id_bounds(session)
    total = 0
    after = lo - 1
    while after < hi:
        upto = min(after + CHUNK, hi)
        batch = await repository.histories_in_range(session, after=after, upto=upto, as_of=as_of)
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
        total += len(batch.customers)
        if progress is not None:
            progress(upto - after, hi - lo + 1)
        after = upto
    changes = await conn.fetch(_RECORD_CHANGES, as_of, active.version)
    await conn.execute(_STORE, as_of, active.version)
    await session.commit()
    return RecomputeSummary(
        customers=total,
        seconds=time.perf_counter() - started,
        tier_changed=sum(1 for c in changes if c["tier_changed"]),
        stage_changed=sum(1 for c in changes if c["stage_changed"]),
        policy_version=active.version,
        as_of=as_of,
    )
