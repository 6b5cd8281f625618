"""What each dashboard page shows, assembled from stored classifications and changes.

The overview's matrix is `app.segments.service.overview` itself, so the page and
`GET /v1/segments/overview` cannot disagree; everything else is a handful of indexed
queries in `app.dashboard.repository`.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.classification.models import ClassificationChange, CurrentClassification
from app.classification.schemas import ClassificationOut
from app.classification.service import classify_customers
from app.core.pagination import decode_cursor, encode_cursor
from app.core.problems import Invalid, NotFound, field_error
from app.customers.models import Customer
from app.dashboard import cache, charts, flows, repository
from app.events.models import Event
from app.policies.schemas import STAGES, TIERS, Strategy
from app.policies.service import current_policy
from app.segments import service as segments
from app.segments.rules import compile_rule
from app.segments.schemas import Cell, Overview, SegmentRead

WINDOWS = (7, 30, 90)
HISTORY_DAYS = 90
PAGE = 50
GEOGRAPHIES = ("domestic", "international", None)
CUSTOMER_TYPES = ("individual", "business", None)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# The `from_` filter value of a customer's first classification (no earlier class).
FIRST = "first"


# -- overview -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatrixCell:
    tier: str
    stage: str
    customers: int
    revenue: Decimal
    heat: int


@dataclass(frozen=True, slots=True)
class Split:
    """Customers and revenue per (group, tier), groups in display order."""

    groups: list[str | None]
    customers: dict[tuple[str | None, str], int]
    revenue: dict[tuple[str | None, str], Decimal]

    def group_total(self, group: str | None) -> tuple[int, Decimal]:
        return (
            sum(n for (g, _), n in self.customers.items() if g == group),
            sum((r for (g, _), r in self.revenue.items() if g == group), Decimal(0)),
        )


@dataclass(frozen=True, slots=True)
class OverviewPage:
    overview: Overview
    rows: list[list[MatrixCell]]
    geography: Split
    customer_type: Split
    histogram: charts.Histogram
    horizon_days: int
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class Population:
    """Every population-wide figure, from one pass over the stored classifications."""

    overview: Overview
    geography: Split
    customer_type: Split
    bins: list[int]
    strategies: dict[str, int]
    computed_at: datetime


def _split(
    totals: dict[tuple[str | None, str], tuple[int, Decimal]], known: Sequence[str | None]
) -> Split:
    seen = {g for g, _ in totals}
    groups = [g for g in known if g in seen] + sorted(g for g in seen if g not in known and g)
    return Split(
        groups=groups,
        customers={k: n for k, (n, _) in totals.items()},
        revenue={k: r for k, (_, r) in totals.items()},
    )


def _add(
    totals: dict[Any, tuple[int, Decimal]], key: Any, customers: int, revenue: Decimal
) -> None:
    n, r = totals.get(key, (0, Decimal(0)))
    totals[key] = (n + customers, r + revenue)


async def _population(session: AsyncSession) -> Population:
    currency = (await current_policy(session)).document.base_currency
    groups, total_customers = await repository.population(session)
    cells: dict[tuple[str, str], tuple[int, Decimal]] = {}
    geography: dict[tuple[str | None, str], tuple[int, Decimal]] = {}
    customer_type: dict[tuple[str | None, str], tuple[int, Decimal]] = {}
    bins = [0] * repository.HISTOGRAM_BINS
    strategies: dict[str, int] = defaultdict(int)
    as_of: datetime | None = None
    version: int | None = None
    for g in groups:
        n, revenue = int(g.customers), Decimal(g.revenue)
        _add(cells, (g.tier, g.stage), n, revenue)
        _add(geography, (g.geography, g.tier), n, revenue)
        _add(customer_type, (g.customer_type, g.tier), n, revenue)
        if g.bin is not None and 1 <= g.bin <= len(bins):
            bins[g.bin - 1] += n
        strategies[g.strategy] += n
        as_of = g.as_of if as_of is None or g.as_of > as_of else as_of
        version = g.policy_version if version is None else max(version, g.policy_version)
    # The same figures, rounded the same way, as GET /v1/segments/overview.
    overview_cells = [
        Cell(tier=t, stage=st, customers=n, revenue=str(r.quantize(segments.CENTS)))
        for (t, st), (n, r) in sorted(cells.items())
    ]
    classified = sum(c.customers for c in overview_cells)
    overview = Overview(
        currency=currency,
        classified=classified,
        unclassified=max(total_customers - classified, 0),
        revenue=str(
            sum((Decimal(c.revenue) for c in overview_cells), Decimal(0)).quantize(segments.CENTS)
        ),
        as_of=as_of,
        policy_version=version,
        cells=overview_cells,
        tiers={t: sum(c.customers for c in overview_cells if c.tier == t) for t in TIERS},
        stages={st: sum(c.customers for c in overview_cells if c.stage == st) for st in STAGES},
    )
    return Population(
        overview=overview,
        geography=_split(geography, GEOGRAPHIES),
        customer_type=_split(customer_type, CUSTOMER_TYPES),
        bins=bins,
        strategies=dict(strategies),
        computed_at=datetime.now(UTC),
    )


async def population(session: AsyncSession) -> Population:
    return await cache.cached(session, "population", _population)


async def overview_page(session: AsyncSession) -> OverviewPage:
    figures = await population(session)
    overview = figures.overview
    found = {(c.tier, c.stage): c for c in overview.cells}
    largest = max((c.customers for c in overview.cells), default=0)
    rows = []
    for tier in TIERS:
        row = []
        for stage in STAGES:
            cell = found.get((tier, stage))
            n = cell.customers if cell else 0
            row.append(
                MatrixCell(
                    tier=tier,
                    stage=stage,
                    customers=n,
                    revenue=Decimal(cell.revenue) if cell else Decimal(0),
                    heat=charts.heat(n, largest),
                )
            )
        rows.append(row)
    policy = await current_policy(session)
    return OverviewPage(
        overview=overview,
        rows=rows,
        geography=figures.geography,
        customer_type=figures.customer_type,
        histogram=charts.histogram(figures.bins),
        horizon_days=policy.document.horizon_days,
        computed_at=figures.computed_at,
    )


# -- movements ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MovementFilter:
    from_tier: str | None = None
    to_tier: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    include_first: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        c = ClassificationChange
        parts: list[ColumnElement[bool]] = []
        if not self.include_first:
            parts.append(c.from_tier.is_not(None))
        for column, value in (
            (c.from_tier, self.from_tier),
            (c.to_tier, self.to_tier),
            (c.from_stage, self.from_stage),
            (c.to_stage, self.to_stage),
        ):
            if value == FIRST:
                parts.append(column.is_(None))
            elif value is not None:
                parts.append(column == value)
        return parts


def movement_filter(
    *,
    from_tier: str | None,
    to_tier: str | None,
    from_stage: str | None,
    to_stage: str | None,
    include_first: bool,
) -> MovementFilter:
    """Checked filter values: codes, `first` for "first classified" on a `from_` filter."""
    from_tier, to_tier, from_stage, to_stage = (
        v or None for v in (from_tier, to_tier, from_stage, to_stage)
    )
    errors = []
    for name, value, allowed in (
        ("from_tier", from_tier, (FIRST, *TIERS)),
        ("to_tier", to_tier, TIERS),
        ("from_stage", from_stage, (FIRST, *STAGES)),
        ("to_stage", to_stage, STAGES),
    ):
        if value is not None and value not in allowed:
            errors.append(field_error([name], f"must be one of {', '.join(allowed)}"))
    if errors:
        raise Invalid("Unknown movement filter", errors=errors)
    first = include_first or FIRST in (from_tier, from_stage)
    return MovementFilter(from_tier, to_tier, from_stage, to_stage, first)


@dataclass(frozen=True, slots=True)
class Movement:
    as_of: datetime
    customer_id: str
    name: str | None
    from_tier: str | None
    from_stage: str | None
    to_tier: str
    to_stage: str


@dataclass(frozen=True, slots=True)
class MovementsPage:
    days: int
    stage_rows: list[charts.StackedRow]
    tier_rows: list[charts.StackedRow]
    stage_moves: int
    tier_moves: int
    first_classified: int
    items: list[Movement]
    next_cursor: str | None


def _flows(rows: Sequence[Any]) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    stages: dict[tuple[str, str], int] = defaultdict(int)
    tiers: dict[tuple[str, str], int] = defaultdict(int)
    for from_tier, from_stage, to_tier, to_stage, n in rows:
        if from_stage != to_stage:
            stages[(from_stage or "", to_stage)] += int(n)
        if from_tier != to_tier:
            tiers[(from_tier or "", to_tier)] += int(n)
    return stages, tiers


def _encode_position(as_of: datetime, change_id: int) -> str:
    raw = orjson.dumps({"as_of": as_of.isoformat(), "id": change_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_position(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    try:
        body = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(body["as_of"])
        if isinstance(body["id"], int) and moment.tzinfo is not None:
            return moment, body["id"]
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        pass
    raise Invalid("The cursor is not valid", errors=[field_error(["cursor"], "not a valid cursor")])


async def movements_page(
    session: AsyncSession,
    *,
    days: int,
    filters: MovementFilter,
    cursor: str | None,
    now: datetime | None = None,
) -> MovementsPage:
    if days not in WINDOWS:
        raise Invalid("Unknown window", errors=[field_error(["days"], "must be 7, 30 or 90")])
    moment = now or datetime.now(UTC)
    since = moment - timedelta(days=days)
    moves: dict[tuple[str | None, str | None, str, str], int] = defaultdict(int)
    for _, from_tier, from_stage, to_tier, to_stage, n in await flows.since(session, since=since):
        moves[(from_tier, from_stage, to_tier, to_stage)] += n
    counts = [(*key, n) for key, n in moves.items()]
    stages, tiers = _flows(counts)
    rows = await repository.changes_page(
        session,
        since=since,
        conditions=filters.conditions(),
        before=_decode_position(cursor),
        limit=PAGE,
    )
    items = [
        Movement(
            as_of=r.as_of,
            customer_id=r.Customer.external_id,
            name=r.Customer.name,
            from_tier=r.from_tier,
            from_stage=r.from_stage,
            to_tier=r.to_tier,
            to_stage=r.to_stage,
        )
        for r in rows[:PAGE]
    ]
    next_cursor = (
        _encode_position(rows[PAGE - 1].as_of, rows[PAGE - 1].id) if len(rows) > PAGE else None
    )
    return MovementsPage(
        days=days,
        stage_rows=charts.stacked_rows(stages, categories=STAGES),
        tier_rows=charts.stacked_rows(tiers, categories=TIERS),
        stage_moves=sum(n for (o, _), n in stages.items() if o),
        tier_moves=sum(n for (o, _), n in tiers.items() if o),
        first_classified=sum(n for (from_tier, *_), n in moves.items() if from_tier is None),
        items=items,
        next_cursor=next_cursor,
    )


# -- segments -------------------------------------------------------------------------


def walk_back(
    size: int, net_by_day: dict[datetime, int], *, today: datetime, days: int
) -> list[int]:
    """A size at the end of each of the last `days` days, oldest first, from today's size
    and each day's entries minus exits: the day before a net +n was n smaller."""
    end = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    net: dict[int, int] = defaultdict(int)
    for day, n in net_by_day.items():
        net[(end - day.astimezone(UTC)).days] += n  # 0: today
    values = [size]
    for offset in range(days - 1):
        size -= net[offset]
        values.append(size)
    return list(reversed(values))


def size_history(
    current: dict[tuple[str, str], int], flows: Sequence[Any], *, today: datetime, days: int
) -> dict[tuple[str, str], list[int]]:
    """Each cell's size at the end of each of the last `days` days, oldest first.

    Exact as long as every change is recorded (every recompute records them); an erased
    customer leaves the history together with their changes.
    """
    net: dict[tuple[str, str], dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for day, from_tier, from_stage, to_tier, to_stage, n in flows:
        net[(to_tier, to_stage)][day] += int(n)
        if from_tier is not None:
            net[(from_tier, from_stage)][day] -= int(n)
    return {
        (t, s): walk_back(current.get((t, s), 0), net[(t, s)], today=today, days=days)
        for t in TIERS
        for s in STAGES
    }


@dataclass(frozen=True, slots=True)
class CellSummary:
    key: str
    tier: str
    stage: str
    customers: int
    revenue: Decimal
    trend: charts.Sparkline


@dataclass(frozen=True, slots=True)
class SegmentsPage:
    cells: list[CellSummary]
    custom: list[SegmentRead]
    next_cursor: str | None
    computed_at: datetime


async def segments_page(
    session: AsyncSession, *, cursor: str | None, now: datetime | None = None
) -> SegmentsPage:
    today = now or datetime.now(UTC)
    figures = await population(session)
    overview = figures.overview
    current = {(c.tier, c.stage): c.customers for c in overview.cells}
    revenue = {(c.tier, c.stage): Decimal(c.revenue) for c in overview.cells}
    start = _history_start(today)
    moves = await flows.since(session, since=start)
    history = size_history(current, moves, today=today, days=_span(today, [f[0] for f in moves]))
    cells = [
        CellSummary(
            key=f"{t}.{s}",
            tier=t,
            stage=s,
            customers=current.get((t, s), 0),
            revenue=revenue.get((t, s), Decimal(0)),
            trend=charts.sparkline(history[(t, s)]),
        )
        for t in TIERS
        for s in STAGES
    ]
    custom = await segments.list_segments(session, cursor=cursor, limit=PAGE)
    return SegmentsPage(
        cells=cells,
        custom=custom.items,
        next_cursor=custom.next_cursor,
        computed_at=figures.computed_at,
    )


def _span(today: datetime, days: Sequence[datetime]) -> int:
    """Days of history to draw: from the first recorded change on (before it nothing was
    classified, so there is no size to show), at most HISTORY_DAYS; 1 without changes."""
    if not days:
        return 1
    end = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, min(HISTORY_DAYS, (end - min(days).astimezone(UTC)).days + 1))


def _history_start(today: datetime) -> datetime:
    start = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start - timedelta(days=HISTORY_DAYS - 1)


@dataclass(frozen=True, slots=True)
class MemberFilter:
    country: str | None = None
    customer_type: str | None = None
    tier: str | None = None
    stage: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        k = CurrentClassification
        parts: list[ColumnElement[bool]] = []
        for column, value in (
            (Customer.country, self.country),
            (Customer.customer_type, self.customer_type),
            (k.tier, self.tier),
            (k.stage, self.stage),
        ):
            if value is not None:
                parts.append(column == value)
        return parts

    def active(self) -> bool:
        return any((self.country, self.customer_type, self.tier, self.stage))


def member_filter(
    *, country: str | None, customer_type: str | None, tier: str | None, stage: str | None
) -> MemberFilter:
    errors = []
    country = country.strip().upper() if country else None
    if country is not None and not _COUNTRY.fullmatch(country):
        errors.append(field_error(["country"], "must be a two-letter country code"))
    for name, value, allowed in (
        ("customer_type", customer_type, ("individual", "business")),
        ("tier", tier, TIERS),
        ("stage", stage, STAGES),
    ):
        if value and value not in allowed:
            errors.append(field_error([name], f"must be one of {', '.join(allowed)}"))
    if errors:
        raise Invalid("Unknown member filter", errors=errors)
    return MemberFilter(country or None, customer_type or None, tier or None, stage or None)


@dataclass(frozen=True, slots=True)
class Member:
    customer_id: str
    name: str | None
    country: str | None
    customer_type: str | None
    tier: str | None
    stage: str | None
    tier_score: float | None
    churn_probability: float | None
    orders: int | None
    revenue: Decimal | None
    strategy: str | None


@dataclass(frozen=True, slots=True)
class SegmentPage:
    key: str
    name: str
    builtin: bool
    tier: str | None
    stage: str | None
    segment: SegmentRead | None
    size: int
    history: charts.Sparkline | None
    members: list[Member]
    next_cursor: str | None
    filters: MemberFilter = field(default_factory=MemberFilter)


async def segment_size(
    session: AsyncSession,
    *,
    key: str,
    segment: SegmentRead | None,
    condition: ColumnElement[bool],
) -> int:
    """How many customers a segment holds: a pass over the stored classifications, kept
    while they and the segment's rule stay the same (see `cache`)."""
    size: int = await cache.cached(
        session,
        ("size", key, segment.updated_at if segment else None),
        lambda own: repository.count_members(own, condition=condition),
    )
    return size


async def warm_segment_sizes(session: AsyncSession, *, limit: int) -> None:
    """The sizes of the first `limit` customer-defined segments."""
    page = await segments.list_segments(session, cursor=None, limit=limit)
    for segment in page.items:
        condition = compile_rule(segment.rule)
        await segment_size(session, key=segment.key, segment=segment, condition=condition)


async def _segment_condition(
    session: AsyncSession, *, key: str
) -> tuple[ColumnElement[bool], SegmentRead | None]:
    builtin = segments.builtin_condition(key)
    if builtin is not None:
        return builtin, None
    segment = await segments.get(session, key=key)  # a 404 for an unknown key
    return compile_rule(segment.rule), segment


def _member(customer: Customer, stored: CurrentClassification | None) -> Member:
    return Member(
        customer_id=customer.external_id,
        name=customer.name,
        country=customer.country,
        customer_type=customer.customer_type,
        tier=stored.tier if stored else None,
        stage=stored.stage if stored else None,
        tier_score=stored.tier_score if stored else None,
        churn_probability=stored.churn_probability if stored else None,
        orders=stored.orders if stored else None,
        revenue=stored.revenue if stored else None,
        strategy=stored.strategy if stored else None,
    )


async def segment_page(
    session: AsyncSession,
    *,
    key: str,
    filters: MemberFilter,
    cursor: str | None,
    now: datetime | None = None,
) -> SegmentPage:
    if len(key) > 64:
        raise NotFound(f"No segment '{key[:64]}…'")
    condition, segment = await _segment_condition(session, key=key)
    tier, _, stage = key.partition(".") if segment is None else (None, "", None)
    rows = await repository.members(
        session,
        condition=and_(condition, *filters.conditions()),
        after=decode_cursor(cursor),
        limit=PAGE,
    )
    members = [_member(c, k) for c, k in rows[:PAGE]]
    next_cursor = encode_cursor(rows[PAGE - 1][0].id) if len(rows) > PAGE else None
    history = None
    if segment is None and tier != "*" and stage != "*":
        # The size and its history as the segments page draws them (the population's
        # figures and the moves ledger), not a count and a scan of the cell's moves.
        today = now or datetime.now(UTC)
        figures = await population(session)
        current = {(c.tier, c.stage): c.customers for c in figures.overview.cells}
        size = current.get((str(tier), str(stage)), 0)
        moves = await flows.since(session, since=_history_start(today))
        days = _span(today, [m[0] for m in moves])
        series = size_history(current, moves, today=today, days=days)[(str(tier), str(stage))]
        history = charts.sparkline(series, width=600, height=120)
    else:
        size = await segment_size(session, key=key, segment=segment, condition=condition)
    return SegmentPage(
        key=key,
        name=segment.name if segment else key,
        builtin=segment is None,
        tier=tier if tier != "*" else None,
        stage=stage if stage != "*" else None,
        segment=segment,
        size=size,
        history=history,
        members=members,
        next_cursor=next_cursor,
        filters=filters,
    )


CSV_COLUMNS = (
    "customer_id",
    "name",
    "country",
    "customer_type",
    "tier",
    "stage",
    "tier_score",
    "churn_probability",
    "orders",
    "revenue",
    "strategy",
)
CSV_BATCH = 2000


def _cell(value: Any) -> Any:
    # A spreadsheet runs text starting with = + - @ as a formula; a quote keeps it text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def members_csv(
    sessionmaker: async_sessionmaker[AsyncSession], *, key: str, filters: MemberFilter
) -> AsyncIterator[str]:
    """The segment's members as CSV rows, read in keyset batches in one snapshot."""
    async with sessionmaker() as session:
        condition, _ = await _segment_condition(session, key=key)
        condition = and_(condition, *filters.conditions())
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        yield buffer.getvalue()
        after: int | None = None
        while True:
            rows = await repository.member_rows(
                session, condition=condition, after=after, limit=CSV_BATCH
            )
            batch = rows[:CSV_BATCH]
            if not batch:
                break
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([_cell(getattr(r, c)) for c in CSV_COLUMNS] for r in batch)
            yield buffer.getvalue()
            if len(rows) <= CSV_BATCH:
                break
            after = batch[-1].id


async def check_segment(session: AsyncSession, *, key: str) -> None:
    """A 404 before a download starts, not half a file."""
    if len(key) > 64:
        raise NotFound("No such segment")
    await _segment_condition(session, key=key)


# -- one customer ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerPage:
    customer: Customer
    stored: CurrentClassification | None
    live: ClassificationOut
    events: Sequence[Event]
    history: Sequence[Any]


async def customer_page(session: AsyncSession, *, customer_id: str, lang: str) -> CustomerPage:
    row = await repository.customer(session, external_id=customer_id)
    if row is None:
        raise NotFound(f"No customer '{customer_id}'")
    customer, stored = row
    [live] = await classify_customers(
        session,
        customer_ids=[customer_id],
        as_of=None,
        horizon_days=None,
        lang=lang,
        single=True,
    )
    events = await repository.recent_events(session, customer_id=customer.id, limit=PAGE)
    history = await repository.customer_changes(session, customer_id=customer.id, limit=100)
    return CustomerPage(customer=customer, stored=stored, live=live, events=events, history=history)


# -- today ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    customer_id: str
    name: str | None
    country: str | None
    tier: str
    stage: str
    tier_score: float
    churn_probability: float
    revenue: Decimal
    last_contact: datetime | None


@dataclass(frozen=True, slots=True)
class WorkGroup:
    code: str
    label: str
    actions: list[str]
    priority: int
    cadence_days: int
    customers: int
    due: list[Due]
    next_cursor: str | None


def _label(strategy: Strategy, lang: str) -> tuple[str, list[str]]:
    label = strategy.label.get(lang) or strategy.label["en"]  # type: ignore[call-overload]
    actions = strategy.actions.get(lang) or strategy.actions["en"]  # type: ignore[call-overload]
    return str(label), list(actions)


def _encode_score(score: float, customer_id: int) -> str:
    raw = orjson.dumps({"score": score, "id": customer_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_score(cursor: str | None) -> tuple[float, int] | None:
    if cursor is None:
        return None
    try:
        body = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(body["score"], int | float) and isinstance(body["id"], int):
            return float(body["score"]), body["id"]
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        pass
    raise Invalid("The cursor is not valid", errors=[field_error(["cursor"], "not a valid cursor")])


@dataclass(frozen=True, slots=True)
class TodayPage:
    groups: list[WorkGroup]
    computed_at: datetime  # of the strategies' sizes


async def today_page(
    session: AsyncSession,
    *,
    lang: str,
    strategy: str | None = None,
    cursor: str | None = None,
    per_group: int = 5,
    now: datetime | None = None,
) -> TodayPage:
    """Strategies by priority, each with its customers due for contact.

    With `strategy`, only that one, a full page of it (and a cursor for the next).
    """
    moment = now or datetime.now(UTC)
    document = (await current_policy(session)).document
    catalogue = sorted(document.strategies, key=lambda s: (s.priority, s.code))
    if strategy is not None:
        catalogue = [s for s in catalogue if s.code == strategy]
        if not catalogue:
            raise NotFound(f"No strategy '{strategy}'")
    figures = await population(session)
    counts = figures.strategies
    limit = PAGE if strategy is not None else per_group
    after = _decode_score(cursor) if strategy is not None else None
    catalogue = [s for s in catalogue if counts.get(s.code)]
    due_by_strategy = await repository.due_for_contact(
        session,
        strategies=[(s.code, moment - timedelta(days=s.cadence_days)) for s in catalogue],
        now=moment,
        after=after,
        limit=limit,
    )
    groups = []
    for s in catalogue:
        rows = due_by_strategy[s.code]
        label, actions = _label(s, lang)
        due = [
            Due(
                customer_id=r.external_id,
                name=r.name,
                country=r.country,
                tier=r.tier,
                stage=r.stage,
                tier_score=r.tier_score,
                churn_probability=r.churn_probability,
                revenue=r.revenue,
                last_contact=r.last_contact,
            )
            for r in rows[:limit]
        ]
        more = len(rows) > limit
        groups.append(
            WorkGroup(
                code=s.code,
                label=label,
                actions=actions,
                priority=s.priority,
                cadence_days=s.cadence_days,
                customers=counts[s.code],
                due=due,
                next_cursor=_encode_score(rows[limit - 1].tier_score, rows[limit - 1].customer_id)
                if more
                else None,
            )
        )
    return TodayPage(groups=groups, computed_at=figures.computed_at)
