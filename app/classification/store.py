"""Stored classifications, written set-based: binary COPY into a staging table, then one
statement for the change history and one upsert.

Both statements compare with what is stored, so a batch stored twice adds no change
rows, and neither touches a stored classification with a newer `as_of`. Orders and
revenue come from the range's history table (`range_histories`), exact, never through
Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import asyncpg
import numpy as np
import orjson

from app.classification.engine.columns import ClassifiedColumns
from app.classification.engine.grouping import spread
from app.classification.engine.stages import STAGES
from app.classification.engine.tiers import TIERS
from app.classification.engine.types import FloatArray, IntArray
from app.classification.range_histories import RangeBatch

CENTS = Decimal("0.01")
# NUMERIC(24, 6) holds magnitudes below 10**18.
MONEY_LIMIT = 1e18
# Below this an amount rounded to 4 decimals is exactly k / 10**4 in its shortest repr,
# so cents can be worked out on integers.
_EXACT_LIMIT = 1e11
COLUMNS = (
    "customer_id",
    "tier",
    "tier_score",
    "stage",
    "strategy",
    "churn_probability",
    "expected_cents",
    "expected_exact",
    "segments",
)

_STAGE_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS recompute_rows (
    customer_id bigint PRIMARY KEY,
    tier text, tier_score float8, stage text, strategy text, churn_probability float8,
    expected_cents bigint, expected_exact numeric, segments jsonb
) ON COMMIT DROP
"""

_STAGED = """
SELECT r.customer_id, r.tier, r.tier_score, r.stage, r.strategy, r.churn_probability,
       h.orders, h.revenue,
       coalesce(r.expected_exact, r.expected_cents::numeric / 100) AS expected_revenue,
       r.segments
  FROM recompute_rows r JOIN recompute_hist h USING (customer_id)
"""

# $1: as_of, $2: policy version. One statement: the change rows compare with the rows
# stored before it, and only rows that will be stored (not older than what is there)
# count as changes.
_MERGE = f"""
WITH staged AS MATERIALIZED ({_STAGED}),
changed AS (
    INSERT INTO classification_changes
           (customer_id, as_of, policy_version, from_tier, to_tier, from_stage, to_stage)
    SELECT r.customer_id, $1, $2, old.tier, r.tier, old.stage, r.stage
      FROM staged r
      LEFT JOIN classifications old ON old.customer_id = r.customer_id
     WHERE old.customer_id IS NULL
        OR (old.as_of <= $1 AND (old.tier <> r.tier OR old.stage <> r.stage))
    RETURNING from_tier, to_tier, from_stage, to_stage
),
stored AS (
    INSERT INTO classifications AS k
           (customer_id, as_of, policy_version, tier, tier_score, stage, strategy,
            churn_probability, orders, revenue, expected_revenue, segments, updated_at)
    SELECT customer_id, $1, $2, tier, tier_score, stage, strategy, churn_probability,
           orders, revenue, expected_revenue, segments, now()
      FROM staged
    ON CONFLICT (customer_id) DO UPDATE SET
        as_of = EXCLUDED.as_of, policy_version = EXCLUDED.policy_version,
        tier = EXCLUDED.tier, tier_score = EXCLUDED.tier_score, stage = EXCLUDED.stage,
        strategy = EXCLUDED.strategy, churn_probability = EXCLUDED.churn_probability,
        orders = EXCLUDED.orders, revenue = EXCLUDED.revenue,
        expected_revenue = EXCLUDED.expected_revenue, segments = EXCLUDED.segments,
        updated_at = now()
     WHERE k.as_of <= EXCLUDED.as_of
       -- A range stored again rewrites nothing (no dead tuples, no index churn).
       AND (k.as_of, k.policy_version, k.tier, k.tier_score, k.stage, k.strategy,
            k.churn_probability, k.orders, k.revenue, k.expected_revenue, k.segments)
           IS DISTINCT FROM
           (EXCLUDED.as_of, EXCLUDED.policy_version, EXCLUDED.tier, EXCLUDED.tier_score,
            EXCLUDED.stage, EXCLUDED.strategy, EXCLUDED.churn_probability, EXCLUDED.orders,
            EXCLUDED.revenue, EXCLUDED.expected_revenue, EXCLUDED.segments)
    RETURNING 1
)
SELECT count(*) FILTER (WHERE from_tier IS DISTINCT FROM to_tier) AS tier_changed,
       count(*) FILTER (WHERE from_stage IS DISTINCT FROM to_stage) AS stage_changed,
       (SELECT count(*) FROM stored) AS stored
  FROM changed
"""  # noqa: S608

_DROP_ERASED = """
DELETE FROM recompute_rows r
 WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = r.customer_id)
"""


@dataclass(frozen=True, slots=True)
class Rows:
    records: list[tuple[Any, ...]]  # in COLUMNS order
    out_of_range: list[int]  # internal ids of customers whose numbers cannot be stored


def money(value: float) -> Decimal:
    """Cents, rounded half-even from the shortest repr: what the API shows."""
    return Decimal(repr(float(value))).quantize(CENTS, rounding=ROUND_HALF_EVEN)


def cents(values: FloatArray) -> tuple[IntArray, np.ndarray[Any, np.dtype[np.bool_]]]:
    """`money(v) * 100` for every value, on integers, and where that is exact.

    For a value rounded to 4 decimals and below 1e11 the shortest repr is k / 10**4
    with k = rint(v * 10**4), so half-even rounding of k to hundreds is `money`'s.
    """
    scaled = np.rint(values * 1e4)
    exact = (np.abs(values) < _EXACT_LIMIT) & (scaled / 1e4 == values)
    k = np.where(exact, scaled, 0).astype(np.int64)
    q, r = np.divmod(k, 100)  # floor division: r is in 0..99 for negatives too
    up = (r > 50) | ((r == 50) & (q % 2 == 1))
    return q + up, exact


def rows(batch: RangeBatch, result: ClassifiedColumns) -> Rows:
    expected = result.expected_revenue
    finite = np.isfinite(expected) & (np.abs(expected) < MONEY_LIMIT)
    keep = batch.storable & finite
    expected_cents, exact = cents(np.where(finite, expected, 0.0))
    segments = [orjson.dumps(t).decode() for t in result.segments]
    strategies = [s[0] for s in result.strategies]
    rows_kept = np.flatnonzero(keep)
    whole = len(rows_kept) == len(keep)

    def pick(values: Any) -> Any:
        return values if whole else values[rows_kept]

    cents_column: list[int | None] = pick(expected_cents).tolist()
    exact_column: list[Decimal | None] = [None] * len(rows_kept)
    for i in np.flatnonzero(~pick(exact)).tolist():
        cents_column[i] = None
        exact_column[i] = money(float(expected[rows_kept[i]]))
    records = list(
        zip(
            pick(batch.ids).tolist(),
            spread(TIERS, pick(result.tier)),
            pick(result.tier_score).tolist(),
            spread(STAGES, pick(result.stage)),
            spread(strategies, pick(result.strategy_group)),
            pick(result.churn_probability).tolist(),
            cents_column,
            exact_column,
            spread(segments, pick(result.segment_group)),
            strict=True,
        )
    )
    return Rows(records=records, out_of_range=batch.ids[~keep].tolist())


async def stage(conn: asyncpg.Connection, rows: Rows) -> None:
    await conn.execute(_STAGE_TABLE)
    await conn.execute("TRUNCATE recompute_rows")
    await conn.copy_records_to_table("recompute_rows", records=rows.records, columns=COLUMNS)


async def merge(conn: asyncpg.Connection, *, as_of: datetime, version: int) -> tuple[int, int]:
    """(tier changes, stage changes) recorded; the staged rows are stored."""
    changes = await conn.fetchrow(_MERGE, as_of, version)
    assert changes is not None
    return int(changes["tier_changed"]), int(changes["stage_changed"])


async def drop_erased(conn: asyncpg.Connection) -> None:
    await conn.execute(_DROP_ERASED)
