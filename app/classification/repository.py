"""SQL that turns stored events into customers' histories as of a time T.

Everything is set-based: one aggregate query serves one customer, a batch of a
thousand, or a whole population. Every query takes the cut-off T as a parameter and
reads only `occurred_at <= T`, which is what keeps later events out of a
classification as of T.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification.engine.types import Histories, Profile
from app.core.db import is_replica, raw_connection
from app.policies.repository import POLICY_LOCK

# {where} picks the customers; $1 is the cut-off T. Each customer's events are read by
# an index range scan on (customer_id, occurred_at), so the cost follows the customers
# asked for, not the size of the events table.
_HISTORY_SQL = """
SELECT c.id, c.external_id, c.country, c.customer_type, c.role, c.industry, c.company_size,
       least(c.created_at, a.first_event_at) AS first_seen_at,
       a.orders, coalesce(g.order_days, CASE WHEN a.orders > 0 THEN 1 ELSE 0 END) AS order_days,
       a.first_order_at, a.last_order_at, a.last_event_at,
       a.revenue, a.refunds, a.refund_count, a.margin,
       g.max_gap, g.last_gap,
       a.inquiries, a.interactions, a.recent_contacts,
       a.feedback_count, a.rating_mean, a.negative_feedback,
       a.first_event_at, a.rating_sum, c.created_at, {snapshot_columns}
  FROM customers c
 {snapshot_join}
 CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE type = 'order') AS orders,
           min(occurred_at) FILTER (WHERE type = 'order') AS first_order_at,
           max(occurred_at) FILTER (WHERE type = 'order') AS last_order_at,
           coalesce(sum(amount_base) FILTER (WHERE type = 'order'), 0) AS revenue,
           coalesce(sum(amount_base) FILTER (WHERE type = 'refund'), 0) AS refunds,
           count(*) FILTER (WHERE type = 'refund') AS refund_count,
           sum(margin_base) FILTER (WHERE type = 'order') AS margin,
           count(*) FILTER (WHERE type = 'inquiry') AS inquiries,
           count(*) FILTER (WHERE type = 'interaction') AS interactions,
           count(*) FILTER (
               WHERE type IN ('inquiry', 'interaction')
                 AND occurred_at > $1::timestamptz - interval '90 days'
           ) AS recent_contacts,
           count(*) FILTER (WHERE type = 'feedback' AND rating IS NOT NULL) AS feedback_count,
           avg(rating) FILTER (WHERE type = 'feedback')::float8 AS rating_mean,
           sum(rating) FILTER (WHERE type = 'feedback') AS rating_sum,
           count(*) FILTER (WHERE type = 'feedback' AND rating <= 4) AS negative_feedback,
           min(occurred_at) AS first_event_at,
           max(occurred_at) AS last_event_at
      FROM events e
     WHERE e.customer_id = c.id AND e.occurred_at > {start} AND e.occurred_at <= $1::timestamptz
 ) a
  LEFT JOIN LATERAL (
    -- Gaps between distinct UTC order days: the customer's own purchase rhythm.
    SELECT count(*) + 1 AS order_days,
           max(gap)::float8 AS max_gap,
           (array_agg(gap ORDER BY d DESC))[1]::float8 AS last_gap
      FROM (SELECT d, d - lag(d) OVER (ORDER BY d) AS gap
              FROM (SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date AS d
                      FROM events e
                     WHERE e.customer_id = c.id AND e.occurred_at > {start}
                       AND e.occurred_at <= $1::timestamptz AND e.type = 'order') days) gaps
     WHERE gap IS NOT NULL
 ) g ON a.orders > 1
 WHERE {where}
 ORDER BY c.id
"""

_WHOLE_HISTORY = {
    "start": "'-infinity'::timestamptz",
    "snapshot_join": "",
    "snapshot_columns": "NULL::timestamptz AS snap_upto, NULL::text AS snap_summary",
}
# A snapshot made earlier in as_of's UTC day covers everything before that day: only the
# events since are aggregated.
_FROM_SNAPSHOT = {
    "start": "coalesce(s.upto, '-infinity'::timestamptz)",
    "snapshot_join": "LEFT JOIN history_snapshots s ON s.customer_id = c.id"
    " AND s.upto <= $1::timestamptz AND s.upto > $1::timestamptz - interval '1 day'",
    "snapshot_columns": "s.upto AS snap_upto, s.summary::text AS snap_summary",
}
# Histories longer than this get a daily snapshot.
SNAPSHOT_MIN_EVENTS = 1000
_SNAPSHOT_FIELDS = (
    "orders",
    "order_days",
    "first_order_at",
    "last_order_at",
    "last_event_at",
    "first_event_at",
    "revenue",
    "refunds",
    "refund_count",
    "margin",
    "max_gap",
    "last_gap",
    "inquiries",
    "interactions",
    "feedback_count",
    "rating_sum",
    "negative_feedback",
)

_BY_EXTERNAL_IDS = "c.external_id = ANY($2::text[])"
_BY_ID_RANGE = "c.id > $2 AND c.id <= $3"


@dataclass(frozen=True, slots=True)
class CustomerHistory:
    """One customer's row of a history query: what the engine needs and what is reported."""

    id: int
    external_id: str
    profile: Profile
    orders: int
    revenue: Decimal
    refunds: Decimal
    margin: Decimal | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    first_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class HistoryBatch:
    customers: list[CustomerHistory]
    histories: Histories


def _days(later: datetime, earlier: datetime | None) -> float:
    if earlier is None:
        return float("nan")
    return max((later - earlier).total_seconds(), 0.0) / 86400.0


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def to_batch(rows: Sequence[Mapping[str, Any]], *, as_of: datetime) -> HistoryBatch:
    """Rows of a history query as plain customers plus the engine's arrays."""
    customers = [
        CustomerHistory(
            id=r["id"],
            external_id=r["external_id"],
            profile=Profile(
                country=r["country"],
                customer_type=r["customer_type"],
                role=r["role"],
                industry=r["industry"],
                company_size=r["company_size"],
            ),
            orders=r["orders"],
            revenue=r["revenue"],
            refunds=r["refunds"],
            margin=r["margin"],
            first_order_at=r["first_order_at"],
            last_order_at=r["last_order_at"],
            first_seen_at=r["first_seen_at"],
        )
        for r in rows
    ]

    def ints(name: str) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.fromiter((r[name] for r in rows), dtype=np.int64, count=len(rows))

    def floats(name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.fromiter((_float(r[name]) for r in rows), dtype=np.float64, count=len(rows))

    def ages(name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.fromiter((_days(as_of, r[name]) for r in rows), dtype=np.float64, count=len(rows))

    histories = Histories(
        orders=ints("orders"),
        order_days=ints("order_days"),
        first_order_age=ages("first_order_at"),
        last_order_age=ages("last_order_at"),
        revenue=floats("revenue"),
        refunds=floats("refunds"),
        refund_count=ints("refund_count"),
        margin=floats("margin"),
        max_gap=floats("max_gap"),
        last_gap=floats("last_gap"),
        inquiries=ints("inquiries"),
        interactions=ints("interactions"),
        recent_contacts=ints("recent_contacts"),
        feedback_count=ints("feedback_count"),
        rating_mean=floats("rating_mean"),
        negative_feedback=ints("negative_feedback"),
        last_activity_age=ages("last_event_at"),
        tenure=ages("first_seen_at"),
    )
    return HistoryBatch(customers=customers, histories=histories)


async def histories_for(
    session: AsyncSession, *, external_ids: Sequence[str], as_of: datetime
) -> dict[str, tuple[Mapping[str, Any], int]]:
    """History rows of the named customers as of T, keyed by external id."""
    conn = await raw_connection(session)
    sql = _HISTORY_SQL.format(where=_BY_EXTERNAL_IDS, **_FROM_SNAPSHOT)
    rows: list[Mapping[str, Any]] = list(await conn.fetch(sql, as_of, list(external_ids)))
    rows = [_with_snapshot(r, as_of=as_of) if r["snap_upto"] is not None else r for r in rows]
    long_histories = [
        r["external_id"]
        for r in rows
        if r["snap_upto"] is None and _event_count(r) >= SNAPSHOT_MIN_EVENTS
    ]
    if long_histories and not is_replica(session):
        await _save_snapshots(conn, external_ids=long_histories, as_of=as_of)
        session.info["commit_needed"] = True
    return {r["external_id"]: (r, i) for i, r in enumerate(rows)}


def _event_count(row: Mapping[str, Any]) -> int:
    return int(
        row["orders"]
        + row["refund_count"]
        + row["inquiries"]
        + row["interactions"]
        + row["feedback_count"]
    )


async def _save_snapshots(conn: Any, *, external_ids: list[str], as_of: datetime) -> None:
    """Aggregate these customers up to the start of as_of's UTC day, for later requests."""
    upto = as_of.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if upto < datetime.now(UTC) - timedelta(days=1):
        return  # only "today" is asked for again and again
    # Summed from amounts in the base currency: a policy change re-basing them meanwhile
    # is waited for (and drops what this stores, if it starts after).
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", POLICY_LOCK)
    sql = _HISTORY_SQL.format(where=_BY_EXTERNAL_IDS, **_WHOLE_HISTORY)
    rows = await conn.fetch(sql, upto, external_ids)
    contacts = await _recent_contacts(conn, ids=[r["id"] for r in rows], upto=upto)
    await conn.executemany(
        "INSERT INTO history_snapshots (customer_id, upto, summary) VALUES ($1, $2, $3::jsonb)"
        " ON CONFLICT (customer_id) DO UPDATE SET upto = EXCLUDED.upto, summary = EXCLUDED.summary",
        [
            (
                r["id"],
                upto,
                _encode({**{k: r[k] for k in _SNAPSHOT_FIELDS}, "contacts": contacts[r["id"]]}),
            )
            for r in rows
        ],
    )


async def _recent_contacts(conn: Any, *, ids: list[int], upto: datetime) -> dict[int, list[int]]:
    """Times (epoch microseconds) of contacts in the 91 days before `upto`: enough to count
    the 90 days before any as_of of that day exactly."""
    found: dict[int, list[int]] = {i: [] for i in ids}
    rows = await conn.fetch(
        "SELECT customer_id, occurred_at FROM events WHERE customer_id = ANY($1::bigint[])"
        " AND type IN ('inquiry', 'interaction') AND occurred_at > $2::timestamptz - interval"
        " '91 days' AND occurred_at <= $2::timestamptz",
        ids,
        upto,
    )
    for r in rows:
        found[r["customer_id"]].append(_micros(r["occurred_at"]))
    return found


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode(summary: dict[str, Any]) -> str:
    return orjson.dumps(
        {k: str(v) if isinstance(v, Decimal) else v for k, v in summary.items()}
    ).decode()


def _with_snapshot(tail: Mapping[str, Any], *, as_of: datetime) -> dict[str, Any]:
    """The whole history: the snapshot (before its day) plus the events since (that day)."""
    snap = orjson.loads(tail["snap_summary"])
    row = dict(tail)

    def moment(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    for key in (
        "orders",
        "refund_count",
        "inquiries",
        "interactions",
        "feedback_count",
        "negative_feedback",
    ):
        row[key] = snap[key] + tail[key]
    row["revenue"] = Decimal(snap["revenue"]) + tail["revenue"]
    row["refunds"] = Decimal(snap["refunds"]) + tail["refunds"]
    margins = [Decimal(snap["margin"])] if snap["margin"] is not None else []
    if tail["margin"] is not None:
        margins.append(tail["margin"])
    row["margin"] = sum(margins) if margins else None
    row["first_order_at"] = moment(snap["first_order_at"]) or tail["first_order_at"]
    row["last_order_at"] = tail["last_order_at"] or moment(snap["last_order_at"])
    row["last_event_at"] = tail["last_event_at"] or moment(snap["last_event_at"])
    first_event = moment(snap["first_event_at"]) or tail["first_event_at"]
    created = tail["created_at"]
    row["first_seen_at"] = (
        min(m for m in (created, first_event) if m) if (created or first_event) else None
    )
    rating_sum = (snap["rating_sum"] or 0) + (tail["rating_sum"] or 0)
    row["rating_mean"] = rating_sum / row["feedback_count"] if row["feedback_count"] else None
    window_start = _micros(as_of - timedelta(days=90))
    row["recent_contacts"] = tail["recent_contacts"] + sum(
        1 for t in snap["contacts"] if t > window_start
    )
    row["order_days"], row["max_gap"], row["last_gap"] = (
        snap["order_days"],
        snap["max_gap"],
        snap["last_gap"],
    )
    if tail["orders"] and snap["orders"]:
        # The tail lies within one UTC day, after every order of the snapshot.
        today = tail["last_order_at"].astimezone(UTC).date()
        before = datetime.fromisoformat(snap["last_order_at"]).astimezone(UTC).date()
        if today > before:
            gap = float((today - before).days)
            row["order_days"] = snap["order_days"] + 1
            row["max_gap"] = max(snap["max_gap"] or 0.0, gap)
            row["last_gap"] = gap
    elif tail["orders"]:
        row["order_days"], row["max_gap"], row["last_gap"] = tail["order_days"], None, None
    return row


async def id_bounds(session: AsyncSession) -> tuple[int, int]:
    conn = await raw_connection(session)
    row = await conn.fetchrow(
        "SELECT coalesce(min(id), 0) AS lo, coalesce(max(id), 0) AS hi FROM customers"
    )
    assert row is not None
    return int(row["lo"]), int(row["hi"])


_FIT_KEY = "policy_version = $1 AND cutoff = $2 AND horizon_days = $3"


async def fit_stamp(
    session: AsyncSession, *, version: int, cutoff: datetime, horizon_days: int
) -> datetime | None:
    """When the stored fit for this key was made, or None when there is none."""
    conn = await raw_connection(session)
    stamp: datetime | None = await conn.fetchval(
        f"SELECT created_at FROM population_fits WHERE {_FIT_KEY}",  # noqa: S608
        version,
        cutoff,
        horizon_days,
    )
    return stamp


async def load_fit(
    session: AsyncSession, *, version: int, cutoff: datetime, horizon_days: int
) -> tuple[str, datetime] | None:
    conn = await raw_connection(session)
    row = await conn.fetchrow(
        f"SELECT model::text AS model, created_at FROM population_fits WHERE {_FIT_KEY}",  # noqa: S608
        version,
        cutoff,
        horizon_days,
    )
    return None if row is None else (row["model"], row["created_at"])


async def lock_fit(
    session: AsyncSession, *, version: int, cutoff: datetime, horizon_days: int
) -> None:
    """Serialise fitting of one key across processes, for the rest of the transaction."""
    conn = await raw_connection(session)
    await conn.execute(
        "SELECT pg_advisory_xact_lock(4170003, hashtext($1))",
        f"{version}:{cutoff.isoformat()}:{horizon_days}",
    )


async def save_fit(
    session: AsyncSession, *, version: int, cutoff: datetime, horizon_days: int, model_json: str
) -> datetime:
    conn = await raw_connection(session)
    stamp: datetime = await conn.fetchval(
        """
        INSERT INTO population_fits (policy_version, cutoff, horizon_days, model)
        VALUES ($1, $2, $3, $4::jsonb)
        ON CONFLICT (policy_version, cutoff, horizon_days)
        DO UPDATE SET model = EXCLUDED.model, created_at = now()
        RETURNING created_at
        """,
        version,
        cutoff,
        horizon_days,
        model_json,
    )
    return stamp
