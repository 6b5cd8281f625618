"""Stored classifications, written set-based: binary COPY into a staging table, then one
statement for the change history and one upsert.

Both statements compare with what is stored, so a batch stored twice adds no change
rows, and neither touches a stored classification with a newer `as_of`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import asyncpg
import orjson

from app.classification.engine import classify
from app.classification.engine.model import PopulationModel
from app.classification.engine.types import EnginePolicy
from app.classification.repository import HistoryBatch

# NUMERIC(24, 6) holds magnitudes below 10**18.
MONEY_LIMIT = Decimal(10) ** 18
CENTS = Decimal("0.01")
COLUMNS = (
    "customer_id",
    "tier",
    "tier_score",
    "stage",
    "strategy",
    "churn_probability",
    "orders",
    "revenue",
    "expected_revenue",
    "segments",
)

_STAGE_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS recompute_rows (
    customer_id bigint PRIMARY KEY,
    tier text, tier_score float8, stage text, strategy text, churn_probability float8,
    orders int, revenue numeric, expected_revenue numeric, segments jsonb
) ON COMMIT DROP
"""

# $1: as_of, $2: policy version. Only rows that will be stored count as changes.
_RECORD_CHANGES = """
WITH changed AS (
INSERT INTO classification_changes
       (customer_id, as_of, policy_version, from_tier, to_tier, from_stage, to_stage)
SELECT r.customer_id, $1, $2, old.tier, r.tier, old.stage, r.stage
  FROM recompute_rows r
  LEFT JOIN classifications old ON old.customer_id = r.customer_id
 WHERE old.customer_id IS NULL
    OR (old.as_of <= $1 AND (old.tier <> r.tier OR old.stage <> r.stage))
RETURNING from_tier, to_tier, from_stage, to_stage
)
SELECT count(*) FILTER (WHERE from_tier IS DISTINCT FROM to_tier) AS tier_changed,
       count(*) FILTER (WHERE from_stage IS DISTINCT FROM to_stage) AS stage_changed
  FROM changed
"""

_STORE = """
INSERT INTO classifications AS k
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
 WHERE k.as_of <= EXCLUDED.as_of
"""

_DROP_ERASED = """
DELETE FROM recompute_rows r
 WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = r.customer_id)
"""


@dataclass(frozen=True, slots=True)
class Rows:
    records: list[tuple[Any, ...]]  # in COLUMNS order
    out_of_range: list[int]  # internal ids of customers whose numbers cannot be stored


def money(value: float | Decimal) -> Decimal:
    """Cents, rounded half-even from the shortest repr: what the API shows."""
    amount = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    return amount.quantize(CENTS, rounding=ROUND_HALF_EVEN)


def _storable(revenue: Decimal, expected: float) -> bool:
    return abs(revenue) < MONEY_LIMIT and math.isfinite(expected) and abs(expected) < 1e18


def rows(batch: HistoryBatch, *, policy: EnginePolicy, model: PopulationModel) -> Rows:
    results = classify(batch.histories, [c.profile for c in batch.customers], model, policy)
    records: list[tuple[Any, ...]] = []
    out_of_range: list[int] = []
    encoded: dict[int, str] = {}
    for c, r in zip(batch.customers, results, strict=True):
        if not _storable(c.revenue, r.expected_revenue):
            out_of_range.append(c.id)
            continue
        # Rows with equal segments share one dict object per template.
        key = id(r.segments)
        segments = encoded.get(key)
        if segments is None:
            segments = encoded[key] = orjson.dumps(dict(r.segments)).decode()
        records.append(
            (
                c.id,
                r.tier,
                r.tier_score,
                r.stage,
                r.strategy,
                r.churn_probability,
                c.orders,
                c.revenue,
                money(r.expected_revenue),
                segments,
            )
        )
    return Rows(records=records, out_of_range=out_of_range)


async def stage(conn: asyncpg.Connection, rows: Rows) -> None:
    await conn.execute(_STAGE_TABLE)
    await conn.execute("TRUNCATE recompute_rows")
    await conn.copy_records_to_table("recompute_rows", records=rows.records, columns=COLUMNS)


async def merge(conn: asyncpg.Connection, *, as_of: datetime, version: int) -> tuple[int, int]:
    """(tier changes, stage changes) recorded; the staged rows are stored."""
    changes = await conn.fetchrow(_RECORD_CHANGES, as_of, version)
    await conn.execute(_STORE, as_of, version)
    assert changes is not None
    return int(changes["tier_changed"]), int(changes["stage_changed"])


async def drop_erased(conn: asyncpg.Connection) -> None:
    await conn.execute(_DROP_ERASED)
