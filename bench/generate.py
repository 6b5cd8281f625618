"""Seeded customers and event histories for benchmarks and backtests, at any size.

Purchases follow a BG/NBD-like repeat-purchase process with heterogeneous customers
(Fader, Hardie & Lee 2005, "Counting your customers the easy way"): each customer buys
at a Poisson rate lambda ~ Gamma(r, alpha) from acquisition on and, after every repeat
purchase, drops out with probability p ~ Beta(a, b); order values follow the Gamma-Gamma
spend model (Fader & Hardie 2013): z ~ Gamma(shape, nu) with nu ~ Gamma(q, gamma) per
customer. Around that: yearly seasonality (purchases peak towards late November),
business customers buying more and bigger by company size, satisfied customers staying
longer, and inquiries, feedback with ratings, interactions and refunds on a few percent
of orders. Everything is vectorised with NumPy: a million customers take seconds.

    python -m bench.generate --customers 10000 --seed 1 --out bench/data
    python -m bench.generate --customers 100000 --copy-to postgresql://...

The COPY target must be migrated (`python -m app migrate`, or `app.core.migrate.upgrade`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import orjson

from app.policies.default import default_document

IntArray = np.ndarray[Any, np.dtype[np.signedinteger[Any]]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
StrArray = np.ndarray[Any, np.dtype[np.str_]]

DAY = 86_400
KINDS = ("order", "refund", "inquiry", "feedback", "interaction")
ORDER, REFUND, INQUIRY, FEEDBACK, INTERACTION = range(5)

COUNTRIES = ("CN", "US", "DE", "GB", "FR", "JP", "BR", "IN", "AU", "CA", "NL", "SG", "MX", "ES")
COUNTRY_WEIGHTS = (30, 16, 8, 6, 5, 6, 4, 5, 4, 4, 3, 3, 3, 3)
CURRENCIES = ("USD", "EUR", "GBP", "CNY", "JPY", "BRL", "INR", "AUD", "CAD", "SGD", "MXN")
COUNTRY_CURRENCY = {
    "CN": "CNY",
    "US": "USD",
    "DE": "EUR",
    "GB": "GBP",
    "FR": "EUR",
    "JP": "JPY",
    "BR": "BRL",
    "IN": "INR",
    "AU": "AUD",
    "CA": "CAD",
    "NL": "EUR",
    "SG": "SGD",
    "MX": "MXN",
    "ES": "EUR",
}
# Currencies without minor units: amounts are whole.
WHOLE_CURRENCIES = frozenset({"JPY"})
INDUSTRIES = (
    "retail",
    "wholesale",
    "manufacturing",
    "machinery",
    "electronics",
    "textiles",
    "food",
    "chemicals",
    "construction",
    "healthcare",
    "logistics",
    "software",
)
INDUSTRY_WEIGHTS = (16, 12, 14, 9, 10, 7, 8, 5, 6, 5, 4, 4)
SIZES = ("micro", "small", "medium", "large", "enterprise")
SIZE_WEIGHTS = (35, 30, 20, 10, 5)
# Order value relative to a consumer's, by company size.
SIZE_SPEND = (3.0, 5.0, 10.0, 25.0, 60.0)
CHANNELS = ("webshop", "marketplace", "mobile_app", "sales_rep", "email", "phone", "edi")
CONSUMER_CHANNELS = (0.55, 0.3, 0.15, 0.0, 0.0, 0.0, 0.0)
BUSINESS_CHANNELS = (0.25, 0.05, 0.0, 0.3, 0.2, 0.1, 0.1)
ACQUISITION = ("organic", "paid_search", "referral", "trade_fair", "marketplace")

CUSTOMER_COLUMNS = (
    "customer_id",
    "name",
    "email",
    "country",
    "customer_type",
    "role",
    "industry",
    "company_size",
    "created_at",
    "attributes",
)
EVENT_COLUMNS = (
    "event_id",
    "customer_id",
    "type",
    "occurred_at",
    "amount",
    "currency",
    "margin",
    "rating",
    "channel",
    "attributes",
)
# The columns COPY fills, in the order the CSV rows carry them.
CUSTOMER_COPY_COLUMNS = (
    "id",
    "external_id",
    "name",
    "email",
    "country",
    "customer_type",
    "role",
    "industry",
    "company_size",
    "created_at",
    "attributes",
)
EVENT_COPY_COLUMNS = (
    "event_id",
    "customer_id",
    "type",
    "occurred_at",
    "amount",
    "currency",
    "amount_base",
    "margin",
    "margin_base",
    "rating",
    "channel",
    "attributes",
)
CHUNK = 50_000


@dataclass(frozen=True)
class Process:
    """Parameters of the purchase process (per day, in USD)."""

    r: float = 0.8  # purchase rate lambda ~ Gamma(r, 1/alpha) per day
    alpha: float = 40.0
    a: float = 1.2  # dropout after each repeat purchase p ~ Beta(a, b)
    b: float = 5.0
    spend_shape: float = 5.0  # order value z ~ Gamma(spend_shape, 1/nu)
    q: float = 4.0  # nu ~ Gamma(q, 1/gamma)
    gamma: float = 90.0
    prospect_share: float = 0.07  # customers with inquiries or interactions and no order
    business_share: float = 0.4
    seasonality: float = 0.35  # amplitude of the yearly cycle, peak at day-of-year 330
    refund_rate: float = 0.035
    feedback_rate: float = 0.2
    inquiry_rate: float = 0.3
    interactions_per_year: float = 1.5


@dataclass(frozen=True)
class Customers:
    ids: list[str]
    country: IntArray  # index into COUNTRIES
    business: BoolArray
    distributor: BoolArray
    industry: IntArray  # index into INDUSTRIES; -1: none
    size: IntArray  # index into SIZES; -1: none
    currency: IntArray  # index into CURRENCIES
    acquisition: IntArray  # index into ACQUISITION
    has_email: BoolArray
    created_at: IntArray  # Unix seconds

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Events:
    seq: IntArray  # the number in the event id
    # Small integer types keep a million customers' ten million events in memory.
    customer: IntArray  # index into Customers (int32)
    kind: IntArray  # index into KINDS (int8; so are currency, rating, channel)
    at: IntArray  # Unix seconds
    amount: IntArray  # hundredths of the currency unit; -1: none
    currency: IntArray  # index into CURRENCIES; -1: none
    margin: IntArray  # hundredths; meaningful where has_margin
    has_margin: BoolArray
    rating: IntArray  # 0-10; -1: none
    channel: IntArray  # index into CHANNELS; -1: none
    items: IntArray  # attributes {"items": n} on orders; -1: none

    def __len__(self) -> int:
        return int(self.seq.size)

    def take(self, index: Any) -> Events:
        """A subset (boolean mask, slice or index array), in the given order."""
        return Events(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass(frozen=True)
class Dataset:
    customers: Customers
    events: Events  # sorted by time
    end: datetime  # no event after this
    event_prefix: str = "e-"
    id_width: int = 9

    def with_events(self, events: Events) -> Dataset:
        return replace(self, events=events)

    def until(self, cutoff: datetime) -> Dataset:
        """Only the events at or before `cutoff`."""
        return self.with_events(self.events.take(self.events.at <= int(cutoff.timestamp())))


def default_end() -> datetime:
    """Today, 00:00 UTC: data ends in the recent past, so `as_of` now sees a live business."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def generate(
    customers: int,
    *,
    seed: int = 1,
    end: datetime | None = None,
    span_days: int = 1095,
    customer_prefix: str = "c-",
    event_prefix: str = "e-",
    process: Process | None = None,
) -> Dataset:
    """`customers` customers acquired over `span_days` before `end`, ~10 events each."""
    p = process or Process()
    rng = np.random.default_rng(seed)
    end = end or default_end()
    end_s = int(end.timestamp())
    start_s = end_s - span_days * DAY
    n = customers
    width = max(6, len(str(n)))

    country = rng.choice(len(COUNTRIES), n, p=_weights(COUNTRY_WEIGHTS))
    business = rng.random(n) < p.business_share
    distributor = business & (rng.random(n) < 0.25)
    industry = np.where(business, rng.choice(len(INDUSTRIES), n, p=_weights(INDUSTRY_WEIGHTS)), -1)
    size = np.where(business, rng.choice(len(SIZES), n, p=_weights(SIZE_WEIGHTS)), -1)
    local = np.array([CURRENCIES.index(COUNTRY_CURRENCY[c]) for c in COUNTRIES])[country]
    # A third of foreign businesses trade in US dollars.
    in_usd = business & (np.array(COUNTRIES)[country] != "CN") & (rng.random(n) < 0.33)
    currency = np.where(in_usd, CURRENCIES.index("USD"), local)

    # Acquisitions grow over time (density rising towards `end`).
    acquired = span_days * rng.random(n) ** (1 / 1.4)
    prospect = rng.random(n) < p.prospect_share
    satisfaction = rng.beta(6.0, 2.0, n)
    rate = rng.gamma(p.r, 1.0 / p.alpha, n)
    rate *= np.where(business, 1.6, 1.0) * np.where(distributor, 1.5, 1.0)
    # Unhappy customers drop out sooner.
    dropout = np.clip(rng.beta(p.a, p.b, n) * (0.4 + 1.8 * (1.0 - satisfaction)), 1e-4, 1.0)

    start_doy = float((end - timedelta(days=span_days)).timetuple().tm_yday)
    owner, day = _purchases(
        rng, acquired, prospect, rate, dropout, span_days, p.seasonality, start_doy
    )
    orders = owner.size

    # Gamma-Gamma spend in USD, scaled for businesses by size, then in the customer's money.
    nu = rng.gamma(p.q, 1.0 / p.gamma, n)
    scale = np.where(business, np.array(SIZE_SPEND)[np.maximum(size, 0)], 1.0)
    usd = rng.gamma(p.spend_shape, 1.0, orders) / nu[owner] * scale[owner]
    usd_per_unit = np.array([float(_rates()[c]) for c in CURRENCIES])
    order_currency = currency[owner]
    amount = _minor_units(np.maximum(usd / usd_per_unit[order_currency], 1.0), order_currency)

    reports_margin = rng.random(n) < np.where(business, 0.6, 0.3)
    margin_rate = rng.beta(4.0, 12.0, n)[owner] + rng.normal(0.0, 0.04, orders)
    margin_rate = np.where(rng.random(orders) < 0.03, -rng.uniform(0.01, 0.1, orders), margin_rate)
    margin = np.round(amount * margin_rate).astype(np.int64)
    has_margin = reports_margin[owner]

    channel_mix = np.where(business[:, None], BUSINESS_CHANNELS, CONSUMER_CHANNELS)
    primary = _choose_rows(rng, channel_mix)
    items = 1 + rng.poisson(np.where(business, 4.0, 1.2)[owner])

    order_at = start_s + (day * DAY).astype(np.int64)
    parts = [
        _part(
            kind=ORDER,
            customer=owner,
            at=order_at,
            amount=amount,
            currency=order_currency,
            margin=margin,
            has_margin=has_margin,
            items=items,
        )
    ]

    # Refunds: a few percent of orders, more from unhappy customers, days later.
    refunded = rng.random(orders) < p.refund_rate * 2.0 * (1.2 - satisfaction[owner])
    share = np.where(rng.random(orders) < 0.6, 1.0, rng.uniform(0.2, 0.9, orders))
    refund_at = order_at + (rng.exponential(8.0, orders) * DAY).astype(np.int64) + 3600
    parts.append(
        _part(
            kind=REFUND,
            customer=owner,
            at=refund_at,
            amount=_minor_units(amount * share / 100.0, order_currency),
            currency=order_currency,
            keep=refunded,
        )
    )

    # Feedback on some orders, rated by the customer's satisfaction.
    rated = rng.random(orders) < p.feedback_rate
    rating = np.clip(np.round(10 * satisfaction[owner] + rng.normal(0, 1.5, orders)), 0, 10)
    parts.append(
        _part(
            kind=FEEDBACK,
            customer=owner,
            at=order_at + (rng.uniform(1, 14, orders) * DAY).astype(np.int64),
            rating=rating.astype(np.int64),
            keep=rated,
        )
    )

    # Inquiries before some orders, and from prospects who never order.
    asked = rng.random(orders) < p.inquiry_rate
    parts.append(
        _part(
            kind=INQUIRY,
            customer=owner,
            at=order_at - (rng.uniform(0.1, 5, orders) * DAY).astype(np.int64),
            keep=asked,
        )
    )
    prospects = np.flatnonzero(prospect)
    asks = 1 + rng.poisson(1.0, prospects.size)
    who = np.repeat(prospects, asks)
    when = acquired[who] + rng.random(who.size) * (span_days - acquired[who])
    parts.append(_part(kind=INQUIRY, customer=who, at=start_s + (when * DAY).astype(np.int64)))

    # Interactions (visits, calls, opened mail) while the relationship lasts.
    last = np.full(n, -1.0)
    np.maximum.at(last, owner, day)
    active_until = np.where(last >= 0, np.minimum(last + 120, span_days), span_days)
    active_years = np.maximum(active_until - acquired, 1.0) / 365.25
    touches = rng.poisson(p.interactions_per_year * active_years)
    who = np.repeat(np.arange(n), touches)
    when = acquired[who] + rng.random(who.size) * (active_until - acquired)[who]
    parts.append(_part(kind=INTERACTION, customer=who, at=start_s + (when * DAY).astype(np.int64)))

    events = _concat(parts)
    inside = np.flatnonzero((events.at <= end_s) & (events.at >= start_s))
    # Time order (a CRM export's order); same-second ties keep customer order.
    order = inside[np.argsort(events.at[inside] * 8 + events.kind[inside], kind="stable")]
    events = events.take(order)
    # Most orders and interactions come through the customer's usual channel.
    usual = rng.random(len(events)) < 0.85
    channel = np.where(usual, primary[events.customer], rng.integers(0, len(CHANNELS), len(events)))
    with_channel = (events.kind == ORDER) | (events.kind == INTERACTION)
    events = replace(
        events,
        seq=np.arange(len(events), dtype=np.int64),
        channel=np.where(with_channel, channel, -1).astype(np.int8),
    )

    first_seen = np.full(n, end_s, dtype=np.int64)
    np.minimum.at(first_seen, events.customer, events.at)
    created = np.where(first_seen < end_s, first_seen, start_s + (acquired * DAY).astype(np.int64))
    return Dataset(
        customers=Customers(
            ids=[f"{customer_prefix}{i + 1:0{width}d}" for i in range(n)],
            country=country,
            business=business,
            distributor=distributor,
            industry=industry,
            size=size,
            currency=currency,
            acquisition=rng.integers(0, len(ACQUISITION), n),
            has_email=rng.random(n) < 0.8,
            created_at=created,
        ),
        events=events,
        end=end,
        event_prefix=event_prefix,
        id_width=max(9, len(str(len(events)))),
    )


def _purchases(
    rng: np.random.Generator,
    acquired: FloatArray,
    prospect: BoolArray,
    rate: FloatArray,
    dropout: FloatArray,
    span: int,
    seasonality: float,
    start_doy: float,
) -> tuple[IntArray, FloatArray]:
    """Order owners and days (since the start) under BG/NBD with seasonal time.

    Seasonality warps time: purchases run at rate lambda in "operational" time
    O(t) = integral of 1 + A cos(2 pi (doy(t) - 330) / 365.25), so more of them fall
    in the peak season. The first purchase is at acquisition; of the N ~ Poisson(lambda
    (O(end) - O(acquired))) purchase opportunities in the window the customer takes the
    first min(M, N), M ~ Geometric(p) repeat purchases before dropping out. The first k
    order statistics of N uniforms come from k exponential spacings plus one
    Gamma(N - k + 1) remainder, so nothing is drawn for purchases never made.
    """
    grid = np.arange(span + 1, dtype=float)
    doy = start_doy + grid
    intensity = 1.0 + seasonality * np.cos(2 * np.pi * (doy - 330) / 365.25)
    operational = np.concatenate([[0.0], np.cumsum((intensity[1:] + intensity[:-1]) / 2)])
    start_op = np.interp(acquired, grid, operational)
    window = operational[-1] - start_op
    opportunities = rng.poisson(rate * window)
    repeats = np.minimum(rng.geometric(dropout), opportunities)
    repeats = np.where(prospect, 0, np.minimum(repeats, 5000))
    orders = np.where(prospect, 0, 1 + repeats)
    owner = np.repeat(np.arange(acquired.size), orders)

    rep_owner = np.repeat(np.arange(acquired.size), repeats)
    spacing = rng.exponential(1.0, rep_owner.size)
    cumulative = np.cumsum(spacing)
    group_start = np.concatenate([[0], np.cumsum(repeats)[:-1]])
    offset = np.concatenate([[0.0], cumulative])[group_start]
    within = cumulative - offset[rep_owner]
    rest = rng.gamma(np.maximum(opportunities - repeats, 0) + 1.0)
    totals = np.zeros(acquired.size)
    np.add.at(totals, rep_owner, spacing)
    fraction = within / (totals + rest)[rep_owner]
    repeat_op = start_op[rep_owner] + window[rep_owner] * fraction
    repeat_day = np.interp(repeat_op, operational, grid)

    days = np.empty(owner.size)
    first = np.concatenate([[0], np.cumsum(orders)[:-1]])[orders > 0]
    is_first = np.zeros(owner.size, dtype=bool)
    is_first[first] = True
    days[is_first] = acquired[orders > 0]
    days[~is_first] = repeat_day
    return owner, days


def _weights(values: Sequence[float]) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    return np.asarray(array / array.sum(), dtype=np.float64)


def _choose_rows(rng: np.random.Generator, probabilities: FloatArray) -> IntArray:
    """One category per row of a (rows x categories) probability matrix."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.random(probabilities.shape[0])[:, None] * cumulative[:, -1:]
    chosen = np.minimum((draws > cumulative).sum(axis=1), probabilities.shape[1] - 1)
    return np.asarray(chosen, dtype=np.int64)


def _minor_units(amount: FloatArray, currency: IntArray) -> IntArray:
    """Round to cents, or to whole units for currencies without minor units."""
    whole = np.isin(currency, [CURRENCIES.index(c) for c in WHOLE_CURRENCIES])
    cents = np.round(amount * 100.0)
    return np.where(whole, np.maximum(np.round(amount), 1) * 100, np.maximum(cents, 1)).astype(
        np.int64
    )


def _part(
    *,
    kind: int,
    customer: IntArray,
    at: IntArray,
    amount: IntArray | None = None,
    currency: IntArray | None = None,
    margin: IntArray | None = None,
    has_margin: BoolArray | None = None,
    rating: IntArray | None = None,
    items: IntArray | None = None,
    keep: BoolArray | None = None,
) -> Events:
    size = customer.size
    small = np.full(size, -1, dtype=np.int8)
    events = Events(
        seq=np.zeros(size, dtype=np.int64),
        customer=customer.astype(np.int32),
        kind=np.full(size, kind, dtype=np.int8),
        at=at.astype(np.int64),
        amount=np.full(size, -1, dtype=np.int64) if amount is None else amount,
        currency=small if currency is None else currency.astype(np.int8),
        margin=np.zeros(size, dtype=np.int64) if margin is None else margin,
        has_margin=np.zeros(size, dtype=bool) if has_margin is None else has_margin,
        rating=small if rating is None else rating.astype(np.int8),
        channel=small,
        items=np.full(size, -1, dtype=np.int16) if items is None else items.astype(np.int16),
    )
    return events if keep is None else events.take(keep)


def _concat(parts: Sequence[Events]) -> Events:
    return Events(
        **{f.name: np.concatenate([getattr(e, f.name) for e in parts]) for f in fields(Events)}
    )


def heavy_customer(
    external_id: str = "heavy-1",
    events: int = 10_000,
    *,
    seed: int = 7,
    end: datetime | None = None,
    span_days: int = 1095,
    event_prefix: str = "h-",
) -> Dataset:
    """One business customer with `events` events (90% orders) spread over the span."""
    rng = np.random.default_rng(seed)
    end = end or default_end()
    end_s = int(end.timestamp())
    at = np.sort(end_s - (rng.random(events) * span_days * DAY).astype(np.int64))
    kind = np.where(rng.random(events) < 0.9, ORDER, rng.choice([FEEDBACK, INQUIRY], events))
    kind[0] = ORDER
    is_order = kind == ORDER
    usd = CURRENCIES.index("USD")
    return Dataset(
        customers=Customers(
            ids=[external_id],
            country=np.array([COUNTRIES.index("US")]),
            business=np.array([True]),
            distributor=np.array([True]),
            industry=np.array([0]),
            size=np.array([SIZES.index("large")]),
            currency=np.array([usd]),
            acquisition=np.array([0]),
            has_email=np.array([True]),
            created_at=at[:1].copy(),
        ),
        events=Events(
            seq=np.arange(events, dtype=np.int64),
            customer=np.zeros(events, dtype=np.int64),
            kind=kind.astype(np.int64),
            at=at,
            amount=np.where(is_order, rng.integers(5_000, 500_000, events), -1),
            currency=np.where(is_order, usd, -1),
            margin=np.zeros(events, dtype=np.int64),
            has_margin=np.zeros(events, dtype=bool),
            rating=np.where(kind == FEEDBACK, rng.integers(0, 11, events), -1),
            channel=np.where(is_order, CHANNELS.index("edi"), -1),
            items=np.where(is_order, rng.integers(1, 40, events), -1),
        ),
        end=end,
        event_prefix=event_prefix,
        id_width=max(6, len(str(events))),
    )


# --- money --------------------------------------------------------------------------------


def _rates() -> dict[str, Decimal]:
    """Value of one unit in the base currency, from the default policy."""
    document = default_document()
    rates = {code: Decimal(rate) for code, rate in document["exchange_rates"].items()}
    rates[document["base_currency"]] = Decimal(1)
    return rates


def _rates_e4() -> IntArray:
    """Rates in 1/10,000 of the base unit, so amount_base is exact integer arithmetic."""
    rates = _rates()
    scaled = [rates[c] * 10_000 for c in CURRENCIES]
    if any(s != s.to_integral_value() for s in scaled):
        raise ValueError("an exchange rate has more than 4 decimal places")
    return np.array([int(s) for s in scaled], dtype=np.int64)


def amount_base(events: Events) -> IntArray:
    """Amounts in millionths of the base currency (exact: hundredths x 1/10,000)."""
    return np.where(events.amount >= 0, events.amount * _rates_e4()[events.currency], 0)


def base_values(events: Events) -> FloatArray:
    """Amounts in the base currency as floats (0 where there is none)."""
    return amount_base(events) / 1e6


# --- text columns -------------------------------------------------------------------------

_CENTS = np.array([f".{i:02d}" for i in range(100)])


def _decimal_strings(hundredths: IntArray, whole: BoolArray) -> StrArray:
    """'129.90' (or '1290' where `whole`), signs kept."""
    magnitude = np.abs(hundredths)
    text = np.strings.add(
        (magnitude // 100).astype(np.str_),
        np.where(whole, "", _CENTS[magnitude % 100]),
    )
    return np.where(hundredths < 0, np.strings.add("-", text), text)


def _times(at: IntArray) -> StrArray:
    return np.datetime_as_string(at.astype("datetime64[s]"), timezone="UTC").astype("U20")


def _ids(prefix: str, seq: IntArray, width: int) -> StrArray:
    return np.strings.add(prefix, np.strings.zfill(seq.astype(np.str_), width))


def _pick(names: Sequence[str], index: IntArray) -> StrArray:
    table = np.array([*names, ""])
    return table[np.where(index >= 0, index, len(names))]


def _nullable(values: list[str]) -> list[str | None]:
    return [v or None for v in values]


def event_columns(data: Dataset, part: Events) -> dict[str, list[Any]]:
    """The API's fields for `part`, as Python values (None where absent)."""
    money = part.amount >= 0
    whole = np.isin(part.currency, [CURRENCIES.index(c) for c in WHOLE_CURRENCIES])
    customer_ids = np.array(data.customers.ids)[part.customer]
    return {
        "event_id": _ids(data.event_prefix, part.seq, data.id_width).tolist(),
        "customer_id": customer_ids.tolist(),
        "type": _pick(KINDS, part.kind).tolist(),
        "occurred_at": _times(part.at).tolist(),
        "amount": _nullable(np.where(money, _decimal_strings(part.amount, whole), "").tolist()),
        "currency": _nullable(_pick(CURRENCIES, part.currency).tolist()),
        "margin": _nullable(
            np.where(part.has_margin, _decimal_strings(part.margin, whole), "").tolist()
        ),
        "rating": [None if r < 0 else r for r in part.rating.tolist()],
        "channel": _nullable(_pick(CHANNELS, part.channel).tolist()),
        "attributes": [None if i < 0 else {"items": i} for i in part.items.tolist()],
    }


def api_events(data: Dataset, part: Events | None = None) -> list[dict[str, Any]]:
    """Events in the shape POST /v1/events takes (absent fields left out)."""
    columns = event_columns(data, data.events if part is None else part)
    names = list(columns)
    return [
        {k: v for k, v in zip(names, row, strict=True) if v is not None}
        for row in zip(*columns.values(), strict=True)
    ]


def customer_columns(data: Dataset, index: IntArray | None = None) -> dict[str, list[Any]]:
    """The customer fields of PUT /v1/customers (plus customer_id) as Python values."""
    c = data.customers
    rows = np.arange(len(c)) if index is None else index
    ids = np.array(c.ids)[rows]
    business = c.business[rows]
    name = np.where(
        business,
        np.strings.add(np.strings.add("Company ", ids), " Ltd"),
        np.strings.add("Customer ", ids),
    )
    email = np.where(c.has_email[rows], np.strings.add(ids, "@example.com"), "")
    return {
        "customer_id": ids.tolist(),
        "name": name.tolist(),
        "email": _nullable(email.tolist()),
        "country": _pick(COUNTRIES, c.country[rows]).tolist(),
        "customer_type": np.where(business, "business", "individual").tolist(),
        "role": np.where(c.distributor[rows], "distributor", "end_customer").tolist(),
        "industry": _nullable(_pick(INDUSTRIES, c.industry[rows]).tolist()),
        "company_size": _nullable(_pick(SIZES, c.size[rows]).tolist()),
        "created_at": _times(c.created_at[rows]).tolist(),
        "attributes": [
            {"acquisition": a, "source": "bench"}
            for a in _pick(ACQUISITION, c.acquisition[rows]).tolist()
        ],
    }


def api_customers(data: Dataset, index: IntArray | None = None) -> list[dict[str, Any]]:
    """Customers in the shape of PUT /v1/customers bodies, with `customer_id` added."""
    columns = customer_columns(data, index)
    names = list(columns)
    return [
        {k: v for k, v in zip(names, row, strict=True) if v is not None}
        for row in zip(*columns.values(), strict=True)
    ]


def event_request_bodies(data: Dataset, *, batch: int = 1000) -> Iterator[bytes]:
    """POST /v1/events request bodies of `batch` events each, in time order."""
    for start in range(0, len(data.events), batch):
        part = data.events.take(slice(start, start + batch))
        yield orjson.dumps({"events": api_events(data, part)})


def webhook_bodies(
    data: Dataset, *, with_customer: bool = True, live: bool = False
) -> Iterator[bytes]:
    """POST /v1/webhooks/orders bodies: one order or refund each, with the customer's
    fields; `live`: all dated now, as a shop posts them, rather than their history (an
    event dated before today deletes the day's population fit)."""
    occurred_at = datetime.now(UTC).isoformat().replace("+00:00", "Z") if live else None
    money = np.flatnonzero(data.events.kind <= REFUND)
    for start in range(0, money.size, CHUNK):
        part = data.events.take(money[start : start + CHUNK])
        customers = api_customers(data, part.customer) if with_customer else None
        for i, event in enumerate(api_events(data, part)):
            if occurred_at is not None:
                event["occurred_at"] = occurred_at
            if customers is not None:
                fields_ = dict(customers[i])
                del fields_["customer_id"]
                event["customer"] = fields_
            yield orjson.dumps(event)


# --- files --------------------------------------------------------------------------------


def write_files(data: Dataset, out: Path) -> list[Path]:
    """customers.csv/.jsonl and events.csv/.jsonl in the shapes `python -m app import` takes."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, columns_of, total, names in (
        ("customers", _customer_chunk, len(data.customers), CUSTOMER_COLUMNS),
        ("events", _event_chunk, len(data.events), EVENT_COLUMNS),
    ):
        with (
            open(out / f"{kind}.csv", "w", newline="") as csv_file,
            open(out / f"{kind}.jsonl", "wb") as jsonl_file,
        ):
            writer = csv.writer(csv_file)
            writer.writerow(names)
            for start in range(0, total, CHUNK):
                columns = columns_of(data, start, min(start + CHUNK, total))
                writer.writerows(
                    [_csv_cell(v) for v in row] for row in zip(*columns.values(), strict=True)
                )
                jsonl_file.write(
                    b"".join(
                        orjson.dumps(
                            {k: v for k, v in zip(names, row, strict=True) if v is not None}
                        )
                        + b"\n"
                        for row in zip(*columns.values(), strict=True)
                    )
                )
        written += [out / f"{kind}.csv", out / f"{kind}.jsonl"]
    return written


def _customer_chunk(data: Dataset, start: int, stop: int) -> dict[str, list[Any]]:
    return customer_columns(data, np.arange(start, stop))


def _event_chunk(data: Dataset, start: int, stop: int) -> dict[str, list[Any]]:
    return event_columns(data, data.events.take(slice(start, stop)))


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return value


# --- COPY ---------------------------------------------------------------------------------


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _quoted_json(values: StrArray) -> StrArray:
    """JSON text quoted for CSV (inner quotes doubled)."""
    return np.strings.add(np.strings.add('"', np.strings.replace(values, '"', '""')), '"')


def customer_copy_csv(data: Dataset, first_id: int, start: int, stop: int) -> bytes:
    """CSV rows for COPY customers, internal ids first_id + index (empty = NULL)."""
    columns = customer_columns(data, np.arange(start, stop))
    ids = (first_id + np.arange(start, stop)).astype(np.str_).tolist()
    attributes = _quoted_json(
        np.array([orjson.dumps(a).decode() for a in columns["attributes"]])
    ).tolist()
    rows = zip(
        ids,
        columns["customer_id"],
        columns["name"],
        [e or "" for e in columns["email"]],
        columns["country"],
        columns["customer_type"],
        columns["role"],
        [i or "" for i in columns["industry"]],
        [s or "" for s in columns["company_size"]],
        columns["created_at"],
        attributes,
        strict=True,
    )
    return ("\n".join(map(",".join, rows)) + "\n").encode()


def event_copy_csv(part: Events, data: Dataset, customer_ids: IntArray) -> bytes:
    """CSV rows for COPY events; numbers in exponent form ('12990E-2') for speed.

    `customer_ids` maps customer index to the internal id. amount_base and margin_base
    are exact, computed with the default policy's rates like the service does.
    """
    money = part.amount >= 0
    rates = _rates_e4()
    rate = np.where(money, rates[np.maximum(part.currency, 0)], 0)
    margin = part.has_margin & money

    def exponent(values: IntArray, mask: BoolArray, power: str) -> list[str]:
        text: list[str] = np.where(mask, np.strings.add(values.astype(np.str_), power), "").tolist()
        return text

    attributes = np.where(
        part.items >= 0,
        np.strings.add(np.strings.add('"{""items"":', part.items.astype(np.str_)), '}"'),
        "",
    )
    rows = zip(
        _ids(data.event_prefix, part.seq, data.id_width).tolist(),
        customer_ids[part.customer].astype(np.str_).tolist(),
        _pick(KINDS, part.kind).tolist(),
        _times(part.at).tolist(),
        exponent(part.amount, money, "E-2"),
        _pick(CURRENCIES, part.currency).tolist(),
        exponent(part.amount * rate, money, "E-6"),
        exponent(part.margin, margin, "E-2"),
        exponent(part.margin * rate, margin, "E-6"),
        np.where(part.rating >= 0, part.rating.astype(np.str_), "").tolist(),
        _pick(CHANNELS, part.channel).tolist(),
        attributes.tolist(),
        strict=True,
    )
    return ("\n".join(map(",".join, rows)) + "\n").encode()


async def _chunks(produce: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in produce:
        yield chunk


async def copy_customers(conn: asyncpg.Connection, data: Dataset) -> IntArray:
    """COPY the customers (with explicit ids); return the internal id of each, by index."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE")
        first = int(await conn.fetchval("SELECT COALESCE(max(id), 0) + 1 FROM customers"))
        total = len(data.customers)
        await conn.copy_to_table(
            "customers",
            source=_chunks(
                customer_copy_csv(data, first, s, min(s + CHUNK, total))
                for s in range(0, total, CHUNK)
            ),
            columns=list(CUSTOMER_COPY_COLUMNS),
            format="csv",
        )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('customers', 'id'), $1)", first + total - 1
        )
    return first + np.arange(total, dtype=np.int64)


async def copy_events(
    conn: asyncpg.Connection, data: Dataset, customer_ids: IntArray, events: Events | None = None
) -> int:
    """COPY events (default: all of the dataset's); return the number of rows."""
    part = data.events if events is None else events
    total = len(part)
    await conn.copy_to_table(
        "events",
        source=_chunks(
            event_copy_csv(part.take(slice(s, s + CHUNK)), data, customer_ids)
            for s in range(0, total, CHUNK)
        ),
        columns=list(EVENT_COPY_COLUMNS),
        format="csv",
    )
    return total


async def copy_into(url: str, data: Dataset, *, analyze: bool = True) -> IntArray:
    """COPY customers and events into a migrated database; the customers' internal ids."""
    conn = await asyncpg.connect(_plain(url))
    try:
        ids = await copy_customers(conn, data)
        await copy_events(conn, data, ids)
        if analyze:
            await conn.execute("ANALYZE customers; ANALYZE events")
        return ids
    finally:
        await conn.close()


def summary(data: Dataset) -> str:
    e = data.events
    counts = ", ".join(f"{k} {int((e.kind == i).sum()):,}" for i, k in enumerate(KINDS))
    return (
        f"{len(data.customers):,} customers, {len(e):,} events "
        f"({len(e) / max(len(data.customers), 1):.1f} per customer: {counts}), "
        f"up to {data.end:%Y-%m-%d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Seeded customers and event histories.",
        epilog="Files: customers.csv/.jsonl and events.csv/.jsonl (`python -m app import`).",
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--end", help="last day of data, YYYY-MM-DD (default: today)")
    parser.add_argument("--span-days", type=int, default=1095)
    parser.add_argument("--out", type=Path, help="write CSV and JSON Lines files here")
    parser.add_argument("--copy-to", metavar="URL", help="COPY into this migrated database")
    args = parser.parse_args()
    end = (
        datetime.strptime(args.end, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)
        if args.end
        else None
    )
    started = time.perf_counter()
    data = generate(args.customers, seed=args.seed, end=end, span_days=args.span_days)
    print(f"generated {summary(data)} in {time.perf_counter() - started:.1f} s")
    if args.out:
        started = time.perf_counter()
        paths = write_files(data, args.out)
        print(f"wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - started:.1f} s")
    if args.copy_to:
        started = time.perf_counter()
        asyncio.run(copy_into(args.copy_to, data))
        print(f"copied into the database in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
