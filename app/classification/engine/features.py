"""The calibration layer's inputs: features built from histories and the BG/NBD output.

Every feature is either a non-decreasing function of silence (time since the last
order or event, with the history before it unchanged) or does not depend on silence
at all. Together with sign-constrained coefficients that makes the churn probability
monotone in silence by construction, and likewise expected orders can only grow with
spend, so the value score is monotone in spend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from app.classification.engine.btyd import BGNBD
from app.classification.engine.regression import Sign
from app.classification.engine.stages import usual_interval
from app.classification.engine.summary import Summary, summarise
from app.classification.engine.tiers import ValueTable, value_table
from app.classification.engine.types import FloatArray

# `summarise` is re-exported: the summary is where every feature starts.
__all__ = [
    "BUYER_COLUMNS",
    "PROSPECT_COLUMNS",
    "Column",
    "Ranks",
    "Summary",
    "buyer_columns",
    "population_ranks",
    "prospect_columns",
    "summarise",
]

_Z_LIMIT = 30.0
# Quantile levels (in the cohort) at which each monotone spline bends.
KNOT_LEVELS = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    churn: Sign | None  # sign constraint in the churn model; None: not used there
    count: Sign | None  # the same in the expected-orders model


def btyd_logit(model: BGNBD, s: Summary, horizon: float) -> FloatArray:
    """logit P(no purchase in the horizon) under BG/NBD, computed from log(1 - P) =
    log P(alive) + log(1 - E[exp(-lambda h)]) so that P near 1 keeps its precision."""
    log_dead_odds = model.log_dead_odds(s.x, s.t_x, s.T)
    log_alive = -np.logaddexp(0.0, log_dead_odds)
    log_silent_alive = (model.r + s.x) * (
        np.log(model.alpha + s.T) - np.log(model.alpha + s.T + horizon)
    )
    with np.errstate(divide="ignore"):
        log_buys = log_alive + np.log(-np.expm1(np.minimum(log_silent_alive, -1e-300)))
        log_silent = np.log(-np.expm1(np.minimum(log_buys, -1e-300)))
    result: FloatArray = np.clip(log_silent - log_buys, -_Z_LIMIT, _Z_LIMIT)
    return result


def knots_of(z: FloatArray) -> tuple[float, ...]:
    if z.size == 0:
        return (0.0,) * len(KNOT_LEVELS)
    return tuple(float(k) for k in np.quantile(z, KNOT_LEVELS))


def ramps(z: FloatArray, knots: tuple[float, ...]) -> list[FloatArray]:
    """A piecewise-linear basis in z (linear beyond the outer knots): with coefficients
    of one sign their sum is a monotone spline, a smooth isotonic recalibration."""
    k = knots
    columns = [np.minimum(z, k[0]) - k[0]]
    columns += [np.clip(z, lo, hi) - lo for lo, hi in pairwise(k)]
    columns.append(np.maximum(z, k[-1]) - k[-1])
    return columns


def silence_ratio(s: Summary, population_interval: float) -> FloatArray:
    """log(1 + days since the last order / the customer's usual interval)."""
    result: FloatArray = np.log1p(s.recency / usual_interval(s, population_interval))
    return result


EXPECTED_COLUMN = "log_btyd_expected"


def log_expected(model: BGNBD, s: Summary, horizon: float) -> FloatArray:
    """log E[order days in the horizon] under BG/NBD (floored: never -inf)."""
    expected = model.expected_purchases(s.x, s.t_x, s.T, horizon)
    result: FloatArray = np.log(np.maximum(expected, 1e-4))
    return result


def _ramp_columns(name: str, churn: Sign, count: Sign | None) -> list[Column]:
    return [Column(f"{name}_{i}", churn=churn, count=count) for i in range(len(KNOT_LEVELS) + 1)]


BUYER_COLUMNS: tuple[Column, ...] = (
    *_ramp_columns("btyd_logit", churn=1, count=None),
    *_ramp_columns("log_silence_vs_rhythm", churn=1, count=-1),
    Column(EXPECTED_COLUMN, churn=-1, count=1),
    Column("log_recency", churn=1, count=-1),
    Column("log_activity_age", churn=1, count=-1),
    # Repeat purchases and purchase span grow with a customer's age whatever their rate,
    # and the cohort the models learn from is always younger than the population they
    # predict. As amounts, an older population would be told it buys more than it does;
    # as the customer's place among their own population's buyers (`Ranks`) they keep
    # the ranking and carry no age. The count model leaves them to BG/NBD's expectation,
    # which knows the age.
    Column("frequency_rank", churn=0, count=None),
    Column("span_rank", churn=0, count=None),
    # Signed in the churn model too, so that expected orders (P(any order) times the
    # orders given any) never fall as spend rises.
    Column("log_spend", churn=-1, count=1),
    Column("refund_share", churn=1, count=-1),
    Column("log_negative_feedback", churn=0, count=0),
    Column("log_feedback", churn=0, count=0),
    Column("log_recent_contacts", churn=0, count=0),
    Column("log_orders_per_day", churn=0, count=0),
)

PROSPECT_COLUMNS: tuple[Column, ...] = (
    Column("log_activity_age", churn=1, count=-1),
    Column("log_tenure", churn=1, count=-1),
    Column("log_inquiries", churn=0, count=0),
    Column("log_interactions", churn=0, count=0),
    Column("log_recent_contacts", churn=0, count=0),
    Column("log_feedback", churn=0, count=0),
)


def refund_share(s: Summary) -> FloatArray:
    result: FloatArray = np.where(
        s.revenue > 0, np.minimum(s.refunds / np.maximum(s.revenue, 1e-300), 1.0), 0.0
    )
    return result


@dataclass(frozen=True, slots=True)
class Ranks:
    """Where repeat purchases and purchase span place a customer among the buyers of
    their population (empirical CDFs, as the tier score's): the cohort's while learning,
    the population's as of T when predicting."""

    frequency: ValueTable | None
    span: ValueTable | None


def population_ranks(s: Summary) -> Ranks:
    return Ranks(frequency=value_table(s.x[s.buyer]), span=value_table(s.t_x[s.buyer]))


def _place(values: FloatArray, table: ValueTable | None) -> FloatArray:
    if table is None or len(table.values) < 2:
        return np.full(values.shape, 0.5)
    return table.place(values)


def buyer_columns(
    s: Summary,
    model: BGNBD,
    *,
    horizon: float,
    population_interval: float,
    knots: tuple[float, ...],
    silence_knots: tuple[float, ...],
    ranks: Ranks | None = None,
    z: FloatArray | None = None,
) -> Iterator[FloatArray]:
    """The BUYER_COLUMNS one at a time (meaningful for customers with an order), so a
    prediction over a million rows never holds the whole feature matrix. Without
    `ranks`, `s` is its own population."""
    z = btyd_logit(model, s, horizon) if z is None else z
    ranks = population_ranks(s) if ranks is None else ranks
    yield from ramps(z, knots)
    yield from ramps(silence_ratio(s, population_interval), silence_knots)
    yield log_expected(model, s, horizon)
    yield np.log1p(s.recency)
    yield np.log1p(s.activity_age)
    yield _place(s.x, ranks.frequency)
    yield _place(s.t_x, ranks.span)
    yield np.log1p(s.mean_spend)
    yield refund_share(s)
    yield np.log1p(s.negative)
    yield np.log1p(s.feedback)
    yield np.log1p(s.recent_contacts)
    yield np.log(np.maximum(s.orders, 1.0) / np.maximum(s.order_days, 1.0))


def prospect_columns(s: Summary) -> Iterator[FloatArray]:
    """The PROSPECT_COLUMNS one at a time (meaningful for customers without an order)."""
    yield np.log1p(s.activity_age)
    yield np.log1p(s.tenure)
    yield np.log1p(s.inquiries)
    yield np.log1p(s.interactions)
    yield np.log1p(s.recent_contacts)
    yield np.log1p(s.feedback)
