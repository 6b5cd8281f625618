"""Stored classifications, written set-based: one binary COPY of fixed-width rows into a
staging table, then one statement for the change history and one upsert.

A staged row holds codes, not text: tier and stage as their index, the strategy and the
segments as the index of their distinct combination in the batch. The statement turns
the codes back into text and JSON from arrays passed once per batch, so no per-customer
Python object is made on the way to the table. Both statements compare with what is
stored, so a batch stored twice adds no change rows, and neither touches a stored
classification with a newer `as_of`. Orders and revenue come from the range's history
table (`range_histories`), exact, never through Python.
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
from app.classification.engine.stages import STAGES
from app.classification.engine.tiers import TIERS
from app.classification.engine.types import FloatArray, IntArray
from app.classification.range_histories import RangeBatch
from app.customers import erasure_gate

CENTS = Decimal("0.01")
# NUMERIC(24, 6) holds magnitudes below 10**18.
MONEY_LIMIT = 1e18
# Below this an amount rounded to 4 decimals is exactly k / 10**4 in its shortest repr,
# so cents can be worked out on integers.
_EXACT_LIMIT = 1e11
_STAGE_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS recompute_rows (
    customer_id bigint PRIMARY KEY,
    tier integer, tier_score float8, stage integer, strategy integer,
    churn_probability float8, expected_cents bigint, segments integer
) ON COMMIT DROP
"""
# Column name and binary type of each staged field, in the table's order.
_FIELDS = (
    ("customer_id", ">i8"),
    ("tier", ">i4"),
    ("tier_score", ">f8"),
    ("stage", ">i4"),
    ("strategy", ">i4"),
    ("churn_probability", ">f8"),
    ("expected_cents", ">i8"),
    ("segments", ">i4"),
)
# A binary COPY row: the field count, then each field's length and value.
_ROW = np.dtype(
    [("fields", ">i2")]
    + [f for name, kind in _FIELDS for f in ((f"{name}_len", ">i4"), (name, kind))]
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_COPY_TRAILER = b"\xff\xff"

# $3 tiers, $4 stages, $5 strategies, $6 the batch's distinct segments (JSON text), all
# indexed by the staged codes from 0; $7/$8 the customers whose expected revenue is not a
# whole number of cents held exactly in a float, with their exact amount. A customer
# erased since the range was read drops out of the join, so nothing is stored for them;
# one erased from now on waits at the gate (`erasure_gate`) for this transaction.
_STAGED = """
SELECT r.customer_id, ($3::text[])[r.tier + 1] AS tier, r.tier_score,
       ($4::text[])[r.stage + 1] AS stage, ($5::text[])[r.strategy + 1] AS strategy,
       r.churn_probability, h.orders, h.revenue,
       coalesce(x.expected, r.expected_cents::numeric / 100) AS expected_revenue,
       s.segments::jsonb AS segments
  FROM recompute_rows r
  JOIN recompute_hist h USING (customer_id)
  JOIN customers c ON c.id = r.customer_id
  JOIN unnest($6::text[]) WITH ORDINALITY AS s (segments, n) ON s.n = r.segments + 1
  LEFT JOIN unnest($7::bigint[], $8::numeric[]) AS x (customer_id, expected)
       ON x.customer_id = r.customer_id
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
      LEFT JOIN (
        -- Only the stored rows of the batch's id span: read through the primary key,
        -- not by a scan of every stored classification once per batch.
        SELECT customer_id, as_of, tier, stage FROM classifications
         WHERE customer_id >= (SELECT min(customer_id) FROM recompute_rows)
           AND customer_id <= (SELECT max(customer_id) FROM recompute_rows)
      ) old ON old.customer_id = r.customer_id
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


@dataclass(frozen=True, slots=True)
class Rows:
    copy: bytes  # the staged rows as binary COPY data
    strategies: list[str]  # by strategy code
    segments: list[str]  # JSON, by segments code
    exact_ids: list[int]  # customers whose expected revenue is given exactly here
    exact: list[Decimal]
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
    storable = batch.storable & finite
    keep = np.flatnonzero(storable)
    expected_cents, exact = cents(np.where(finite, expected, 0.0)[keep])
    inexact = np.flatnonzero(~exact)
    table = np.zeros(keep.shape[0], dtype=_ROW)
    table["fields"] = len(_FIELDS)
    for name, kind in _FIELDS:
        table[f"{name}_len"] = np.dtype(kind).itemsize
    table["customer_id"] = batch.ids[keep]
    table["tier"] = result.tier[keep]
    table["tier_score"] = result.tier_score[keep]
    table["stage"] = result.stage[keep]
    # One strategy per combination in the batch, but few distinct codes: the statement
    # looks each row's up in an array, which must stay short.
    codes, strategy = np.unique(
        np.array([s[0] for s in result.strategies], dtype=object), return_inverse=True
    )
    table["strategy"] = strategy.reshape(-1)[result.strategy_group[keep]]
    table["churn_probability"] = result.churn_probability[keep]
    table["expected_cents"] = expected_cents
    table["segments"] = result.segment_group[keep]
    return Rows(
        copy=_COPY_HEADER + table.tobytes() + _COPY_TRAILER,
        strategies=[str(code) for code in codes],
        segments=[orjson.dumps(t).decode() for t in result.segments],
        exact_ids=batch.ids[keep][inexact].tolist(),
        exact=[money(float(v)) for v in expected[keep][inexact].tolist()],
        out_of_range=batch.ids[~storable].tolist(),
    )


async def stage(conn: asyncpg.Connection, rows: Rows) -> None:
    await conn.execute(_STAGE_TABLE)
    await conn.execute("TRUNCATE recompute_rows")
    await conn.copy_to_table("recompute_rows", source=_Chunks(rows.copy), format="binary")


class _Chunks:
    """Bytes as the async iterable `copy_to_table` streams from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if not self._data:
            raise StopAsyncIteration
        data, self._data = self._data, b""
        return data


async def merge(
    conn: asyncpg.Connection, rows: Rows, *, as_of: datetime, version: int
) -> tuple[int, int]:
    """(tier changes, stage changes) recorded; the staged rows are stored."""
    # Before the statement, so that its snapshot sees every erasure that passed the gate.
    await erasure_gate.enter(conn)
    changes = await conn.fetchrow(
        _MERGE,
        as_of,
        version,
        list(TIERS),
        list(STAGES),
        rows.strategies,
        rows.segments,
        rows.exact_ids,
        rows.exact,
    )
    assert changes is not None
    return int(changes["tier_changed"]), int(changes["stage_changed"])
