"""Histories of a whole id range as of T, in one pass over the events, as NumPy columns.

The request path reads a few customers with one index probe each (`repository`); a
range reads its events in index order instead, (customer_id, occurred_at), so the
customers' order days, gaps and sums come out of one scan, a window and a grouping,
with no per-customer subquery. The result lands in a temporary table, which the store
joins for the exact revenue and order count, and is read back as one row of arrays.
Every column is computed the way `repository.to_batch` computes it (ages from the same
exact seconds, money through the same float conversion), so a stored classification
equals the one the endpoint gives for the same T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np

from app.classification.aggregates_sql import age_days, event_aggregates
from app.classification.engine.types import FloatArray, Histories, IntArray, Profile

_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS recompute_hist (
    customer_id bigint PRIMARY KEY,
    country text, customer_type text, role text, industry text, company_size text,
    orders bigint, order_days bigint, revenue numeric, storable boolean,
    first_order_age float8, last_order_age float8, last_activity_age float8, tenure float8,
    revenue_f float8, refunds_f float8, refund_count bigint, margin_f float8,
    max_gap float8, last_gap float8, inquiries bigint, interactions bigint,
    recent_contacts bigint, feedback_count bigint, rating_mean float8,
    negative_feedback bigint
) ON COMMIT DROP
"""


# {events} and {customers} pick the customers; $1 is T.
_FILL = f"""
INSERT INTO recompute_hist
SELECT c.id, c.country, c.customer_type, c.role, c.industry, c.company_size,
       coalesce(a.orders, 0), 0, coalesce(a.revenue, 0),
       coalesce(abs(a.revenue) < 1e18, true),
       {age_days("a.first_order_at")}, {age_days("a.last_order_at")}, {age_days("a.last_event_at")},
       {age_days("least(c.created_at, a.first_event_at)")},
       coalesce(a.revenue, 0)::float8, coalesce(a.refunds, 0)::float8,
       coalesce(a.refund_count, 0), coalesce(a.margin::float8, 'NaN'), 'NaN', 'NaN',
       coalesce(a.inquiries, 0), coalesce(a.interactions, 0), coalesce(a.recent_contacts, 0),
       coalesce(a.feedback_count, 0), coalesce(a.rating_mean, 'NaN'),
       coalesce(a.negative_feedback, 0)
  FROM customers c
  LEFT JOIN ({event_aggregates("{events}")}
  ) a ON a.customer_id = c.id
 WHERE {{customers}}
"""  # noqa: S608

# Every order's UTC day (days since 2000-01-01), in index order: customer, then time,
# read with binary COPY.
# Order days and the gaps between them are worked out from this in NumPy (a window
# over the events costs PostgreSQL more than the whole aggregate above).
_ORDER_DAYS = """
SELECT customer_id, (occurred_at AT TIME ZONE 'UTC')::date - date '2000-01-01'
  FROM events
 WHERE type = 'order' AND {events} AND occurred_at <= {as_of}::timestamptz
 ORDER BY customer_id, occurred_at
"""
# A binary COPY row of (bigint, integer): field count, then length and value of each.
_DAY_ROW = np.dtype(
    [("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("day_len", ">i4"), ("day", ">i4")]
)
_COPY_HEADER = 19  # signature, flags, header extension length
_COPY_TRAILER = 2

_RANGE = {
    "events": "customer_id > $2 AND customer_id <= $3",
    "customers": "c.id > $2 AND c.id <= $3",
}
_IDS = {"events": "customer_id = ANY($2::bigint[])", "customers": "c.id = ANY($2::bigint[])"}
# The same ids, but only those customers that existed at T: created by then, or with an
# event by then (what the population at T is made of).
_EXISTING = {
    "events": _IDS["events"],
    "customers": f"{_IDS['customers']}"
    " AND (c.created_at <= $1::timestamptz OR a.first_event_at IS NOT NULL)",
}

_INT_COLUMNS = (
    "orders",
    "order_days",
    "refund_count",
    "inquiries",
    "interactions",
    "recent_contacts",
    "feedback_count",
    "negative_feedback",
)
_INT_NAMES = frozenset({"customer_id", *_INT_COLUMNS})
_FLOAT_COLUMNS = {
    "first_order_age": "first_order_age",
    "last_order_age": "last_order_age",
    "revenue": "revenue_f",
    "refunds": "refunds_f",
    "margin": "margin_f",
    "max_gap": "max_gap",
    "last_gap": "last_gap",
    "rating_mean": "rating_mean",
    "last_activity_age": "last_activity_age",
    "tenure": "tenure",
}
_PROFILE_COLUMNS = ("country", "customer_type", "role", "industry", "company_size")
_NUMBERS = ("customer_id", "storable", *_INT_COLUMNS, *_FLOAT_COLUMNS.values())
# Every number column is NOT NULL (NaN stands for none): binary COPY rows of fixed width.
_NUMBER_ROW = np.dtype(
    [("fields", ">i2")]
    + [
        field
        for name in _NUMBERS
        for field in (
            (f"{name}_len", ">i4"),
            (name, "?" if name == "storable" else ">i8" if name in _INT_NAMES else ">f8"),
        )
    ]
)
_READ_NUMBERS = f"SELECT {', '.join(_NUMBERS)} FROM recompute_hist ORDER BY customer_id"  # noqa: S608
_READ_PROFILES = (
    "SELECT "  # noqa: S608
    + ", ".join(f"array_agg({c} ORDER BY customer_id) AS {c}" for c in _PROFILE_COLUMNS)
    + " FROM recompute_hist"
)


@dataclass(frozen=True, slots=True)
class RangeBatch:
    ids: IntArray
    storable: np.ndarray[Any, np.dtype[np.bool_]]  # revenue fits NUMERIC(24, 6)
    histories: Histories
    profiles: list[Profile]

    def __len__(self) -> int:
        return int(self.ids.shape[0])


async def read_range(
    conn: asyncpg.Connection, *, after: int, upto: int, as_of: datetime
) -> RangeBatch:
    """Customers with after < id <= upto as of T (also left in `recompute_hist`)."""
    return await _read(conn, _RANGE, as_of, after, upto)


async def read_ids(conn: asyncpg.Connection, *, ids: Sequence[int], as_of: datetime) -> RangeBatch:
    """The customers with these internal ids as of T (unknown ids are left out)."""
    return await _read(conn, _IDS, as_of, sorted(set(ids)))


async def read_existing(
    conn: asyncpg.Connection, *, ids: Sequence[int], as_of: datetime
) -> RangeBatch:
    """Those of these customers that existed at T, as of T (a population sample)."""
    return await _read(conn, _EXISTING, as_of, sorted(set(ids)))


async def _read(conn: asyncpg.Connection, where: dict[str, str], *args: Any) -> RangeBatch:
    await conn.execute(_TABLE)
    await conn.execute("TRUNCATE recompute_hist")
    # Compiling these statements costs more than it saves on a range.
    await conn.execute("SET LOCAL jit = off")
    await conn.execute(_FILL.format(**where), *args)
    days = copy_rows(await copy_out(conn, _order_days_query(where, *args)), _DAY_ROW)
    numbers = copy_rows(await copy_out(conn, _READ_NUMBERS), _NUMBER_ROW)
    if numbers.shape[0] == 0:
        return _empty()
    profiles_row = await conn.fetchrow(_READ_PROFILES)
    assert profiles_row is not None
    ids = numbers["customer_id"].astype(np.int64)
    ints = {name: numbers[name].astype(np.int64) for name in _INT_COLUMNS}
    floats = {name: numbers[column].astype(np.float64) for name, column in _FLOAT_COLUMNS.items()}
    ints["order_days"], floats["max_gap"], floats["last_gap"] = order_day_gaps(
        ids, days["id"].astype(np.int64), days["day"].astype(np.int64)
    )
    profiles = list(map(Profile, *(profiles_row[c] for c in _PROFILE_COLUMNS)))
    return RangeBatch(
        ids=ids,
        storable=numbers["storable"].astype(bool),
        histories=_histories(ints, floats),
        profiles=profiles,
    )


def _empty() -> RangeBatch:
    no_ints = np.zeros(0, dtype=np.int64)
    no_floats = np.zeros(0, dtype=np.float64)
    return RangeBatch(
        ids=no_ints,
        storable=np.zeros(0, dtype=bool),
        histories=_histories(
            dict.fromkeys(_INT_COLUMNS, no_ints), dict.fromkeys(_FLOAT_COLUMNS, no_floats)
        ),
        profiles=[],
    )


def _histories(ints: dict[str, IntArray], floats: dict[str, FloatArray]) -> Histories:
    columns: dict[str, Any] = {**ints, **floats}
    return Histories(**columns)


async def copy_out(conn: asyncpg.Connection, query: str, *args: Any) -> bytes:
    """A query's result as binary COPY data (asyncpg writes the arguments in)."""
    chunks: list[bytes] = []

    async def keep(chunk: bytes) -> None:
        chunks.append(chunk)

    await conn.copy_from_query(query, *args, output=keep, format="binary")
    return b"".join(chunks)


def copy_rows(data: bytes, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """The tuples of a binary COPY whose every field is fixed-width and not null."""
    return np.frombuffer(data[_COPY_HEADER:-_COPY_TRAILER], dtype=dtype)


def _order_days_query(where: dict[str, str], as_of: datetime, *args: Any) -> str:
    """The order-day COPY with its values written in: COPY takes no parameters. They are
    a time and integers of this module's own making, rendered from their types."""
    events = where["events"].replace("$1", "")
    if len(args) == 2:
        events = events.replace("$2", str(int(args[0]))).replace("$3", str(int(args[1])))
    else:
        listed = ",".join(str(int(i)) for i in args[0])
        events = events.replace("$2::bigint[]", f"'{{{listed}}}'::bigint[]")
    moment = as_of.astimezone(UTC).isoformat()
    return _ORDER_DAYS.format(events=events, as_of=f"'{moment}'")


def order_day_gaps(
    ids: IntArray, order_ids: IntArray, order_days: IntArray
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Per customer in `ids`: distinct order days, the longest gap between consecutive
    order days and the last such gap (NaN with fewer than two order days).

    `order_ids`/`order_days` hold every order, grouped by customer and in time order.
    """
    n = ids.shape[0]
    count = np.zeros(n, dtype=np.int64)
    longest = np.full(n, np.nan)
    last = np.full(n, np.nan)
    if order_ids.size == 0:
        return count, longest, last
    order = np.argsort(ids, kind="stable")
    position = order[np.searchsorted(ids, order_ids, sorter=order)]
    same_customer = np.zeros(order_ids.shape, dtype=bool)
    same_customer[1:] = order_ids[1:] == order_ids[:-1]
    gap = np.zeros(order_ids.shape, dtype=np.int64)
    gap[1:] = order_days[1:] - order_days[:-1]
    new_day = ~same_customer | (gap > 0)
    np.add.at(count, position[new_day], 1)
    gapped = same_customer & (gap > 0)
    gap_rows = position[gapped]
    gap_values = gap[gapped].astype(np.float64)
    np.fmax.at(longest, gap_rows, gap_values)
    # Rows are in time order within a customer: its last gap is the one before the next
    # customer's first.
    final = np.ones(gap_rows.shape, dtype=bool)
    final[:-1] = gap_rows[1:] != gap_rows[:-1]
    last[gap_rows[final]] = gap_values[final]
    return count, longest, last
