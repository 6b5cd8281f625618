"""The supervised layer: what BG/NBD predicts, recalibrated on what the population did.

A cohort summarised at T0 = T - horizon is labelled with what each customer did in
(T0, T]. A sign-constrained logistic regression learns P(no order in the horizon) from
the BG/NBD logit (through a monotone spline), silence against the customer's rhythm and
behaviour BG/NBD ignores (refunds, feedback, contacts); a Poisson regression (log link)
learns the expected order count the same way. Both are plain maximum a posteriori GLMs
(see regression.py); the recalibration is what makes "0.7" mean 70 %. At prediction
every feature is held to the range the cohort showed: a population older than its
cohort (always so in a young installation) is not predicted by extending straight
lines past the data.

Customers without an order get their own small model on contact behaviour, or, with
too few of them in the cohort, the cohort's smoothed conversion rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.classification.engine.btyd import BGNBD
from app.classification.engine.features import (
    BUYER_COLUMNS,
    EXPECTED_COLUMN,
    PROSPECT_COLUMNS,
    Column,
    Ranks,
    btyd_logit,
    buyer_columns,
    knots_of,
    log_expected,
    population_ranks,
    prospect_columns,
    silence_ratio,
)
from app.classification.engine.regression import (
    Family,
    Glm,
    Sign,
    fit_glm,
    linear_many,
    response,
)
from app.classification.engine.summary import BoolArray, Summary, take
from app.classification.engine.types import FloatArray, IntArray

# At most this many cohort rows go into one optimiser (a fixed stride: reproducible).
FIT_SAMPLE = 100_000
# Fewer cohort customers than this in either outcome class: no regression.
MIN_CLASS = 10
MIN_PROSPECTS = 100
# Before any data, a prospect places no order in the horizon with this probability,
# held with the weight of this many prospects; and one who buys places this many orders.
PRIOR_PROSPECT_SILENT = 0.95
PRIOR_PROSPECT_WEIGHT = 20.0
PRIOR_ORDERS_IF_BUYING = 1.0
PRIOR_ORDERS_WEIGHT = 2.0
MAX_COUNT = 1000.0
# Probabilities never reach 0 or 1: nobody is certain to buy or to stay away.
P_FLOOR = 1e-4


@dataclass(frozen=True, slots=True)
class BuyerCalibrator:
    knots: tuple[float, ...]  # where the spline in the BG/NBD logit bends
    silence_knots: tuple[float, ...]  # and the one in silence against the usual interval
    churn: Glm  # logistic: P(no order in the horizon)
    count: Glm  # Poisson: expected orders in the horizon given any order
    # Each feature column's (lowest, highest) value in the cohort it was fitted on.
    ranges: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class ProspectCalibrator:
    silent_rate: float  # smoothed share of cohort prospects who placed no order
    orders_if_buying: float  # smoothed mean orders of those who did
    churn: Glm | None = None  # logistic on contact behaviour, when the cohort allows
    count: Glm | None = None


def stride(size: int, limit: int = FIT_SAMPLE) -> int:
    return max(1, -(-size // limit))


def _sample(mask: BoolArray) -> IntArray:
    rows = np.flatnonzero(mask)
    result: IntArray = rows[:: stride(rows.size)]
    return result


def _used(columns: tuple[Column, ...], model: str) -> list[tuple[str, Sign]]:
    """(name, sign constraint) of the feature columns one model uses."""
    signs = ((c.name, c.churn if model == "churn" else c.count) for c in columns)
    return [(name, sign) for name, sign in signs if sign is not None]


def _fit_one(
    named: dict[str, FloatArray],
    target: FloatArray,
    columns: tuple[Column, ...],
    model: str,
) -> Glm | None:
    """One GLM on the columns it uses, by name; its coefficients laid out over all of
    `columns` (zero for the unused), so prediction walks every column in order."""
    used = _used(columns, model)
    matrix = np.stack([named[name] for name, _ in used], axis=1)
    family: Family = "logistic" if model == "churn" else "poisson"
    glm = fit_glm(matrix, target, family=family, signs=[sign for _, sign in used])
    if glm is None:
        return None
    by_name = dict(zip((name for name, _ in used), glm.coef, strict=True))
    return Glm(intercept=glm.intercept, coef=tuple(by_name.get(c.name, 0.0) for c in columns))


def _fit_pair(
    features: FloatArray,
    orders: FloatArray,
    columns: tuple[Column, ...],
    *,
    given_any: bool = False,
) -> tuple[Glm, Glm] | None:
    """The churn model and the count model; with `given_any` the count model is of
    E[orders | any order], fitted on the customers who ordered (a hurdle model)."""
    silent = (orders == 0).astype(np.float64)
    if silent.sum() < MIN_CLASS or (1.0 - silent).sum() < MIN_CLASS:
        return None
    named = {c.name: features[:, i] for i, c in enumerate(columns)}
    churn = _fit_one(named, silent, columns, "churn")
    counted = orders > 0 if given_any else np.ones(orders.size, dtype=bool)
    count = _fit_one(
        {name: column[counted] for name, column in named.items()},
        np.minimum(orders[counted], MAX_COUNT),
        columns,
        "count",
    )
    if churn is None or count is None:
        return None
    return churn, count


def fit_buyers(
    s: Summary,
    orders: FloatArray,
    btyd: BGNBD,
    *,
    horizon: float,
    population_interval: float,
    ranks: Ranks | None = None,
) -> BuyerCalibrator | None:
    """Fit on the cohort's customers with an order; `btyd` is the BG/NBD fitted on the
    cohort itself (as of T0), so nothing the features carry comes from after T0.
    `ranks` are the whole cohort's when `s` is a part of it."""
    rows = _sample(s.buyer)
    if rows.size == 0:
        return None
    part = take(s, rows)
    z = btyd_logit(btyd, part, horizon)
    knots = knots_of(z)
    silence_knots = knots_of(silence_ratio(part, population_interval))
    features = np.stack(
        list(
            buyer_columns(
                part,
                btyd,
                horizon=horizon,
                population_interval=population_interval,
                knots=knots,
                silence_knots=silence_knots,
                ranks=population_ranks(s) if ranks is None else ranks,
                z=z,
            )
        ),
        axis=1,
    )
    pair = _fit_pair(features, orders[rows], BUYER_COLUMNS, given_any=True)
    if pair is None:
        return None
    ranges = tuple(
        (float(lo), float(hi))
        for lo, hi in zip(features.min(axis=0), features.max(axis=0), strict=True)
    )
    return BuyerCalibrator(
        knots=knots, silence_knots=silence_knots, churn=pair[0], count=pair[1], ranges=ranges
    )


def fit_prospects(s: Summary, orders: FloatArray) -> ProspectCalibrator:
    """The cohort prospects' smoothed conversion, and a regression when there are enough."""
    prospects = ~s.buyer
    n = float(prospects.sum())
    bought = prospects & (orders > 0)
    converted = float(bought.sum())
    silent_rate = (n - converted + PRIOR_PROSPECT_SILENT * PRIOR_PROSPECT_WEIGHT) / (
        n + PRIOR_PROSPECT_WEIGHT
    )
    orders_if_buying = (
        float(np.minimum(orders[bought], MAX_COUNT).sum())
        + PRIOR_ORDERS_IF_BUYING * PRIOR_ORDERS_WEIGHT
    ) / (converted + PRIOR_ORDERS_WEIGHT)
    base = ProspectCalibrator(silent_rate=silent_rate, orders_if_buying=orders_if_buying)
    if n < MIN_PROSPECTS:
        return base
    rows = _sample(prospects)
    features = np.stack(list(prospect_columns(take(s, rows))), axis=1)
    pair = _fit_pair(features, orders[rows], PROSPECT_COLUMNS)
    if pair is None:
        return base
    return ProspectCalibrator(
        silent_rate=silent_rate, orders_if_buying=orders_if_buying, churn=pair[0], count=pair[1]
    )


def prior_prospects() -> ProspectCalibrator:
    return ProspectCalibrator(
        silent_rate=PRIOR_PROSPECT_SILENT, orders_if_buying=PRIOR_ORDERS_IF_BUYING
    )


def predict_buyers(
    calibrator: BuyerCalibrator,
    s: Summary,
    btyd: BGNBD,
    *,
    horizon: float,
    population_interval: float,
    window: float | None = None,
    ranks: Ranks | None = None,
) -> tuple[FloatArray, FloatArray]:
    """(P(no order in the horizon), expected orders) for customers with an order, placed
    by `ranks` among their population's buyers (without them, `s` is the population).

    With the `window` the count model learned on, when shorter than the horizon: the
    expected orders are the model's for the window, grown to the horizon as BG/NBD says
    a customer's orders grow, rather than the window's regression extrapolated."""
    columns = buyer_columns(
        s,
        btyd,
        horizon=horizon,
        population_interval=population_interval,
        knots=calibrator.knots,
        silence_knots=calibrator.silence_knots,
        ranks=ranks,
    )
    # Held to the cohort's ranges: a customer beyond them (older, or with more orders,
    # than anyone in the cohort) is predicted as the nearest fitted customer is.
    churn, orders = linear_many(
        (calibrator.churn, calibrator.count), columns, s.x.size, bounds=calibrator.ranges
    )
    if window is not None and 0 < window < horizon:
        orders = orders + _growth(calibrator, s, btyd, window=window, horizon=horizon)
    silent = _probabilities(churn)
    return silent, hurdle(silent, response(orders, family="poisson"))


def hurdle(silent: FloatArray, given_any: FloatArray) -> FloatArray:
    """Expected orders as P(any order) * E[orders | any]: the first from the validated
    churn model, the second from the count model fitted on the customers who ordered
    (never below one). The churn model separates buyers from the silent better than a
    count model's own zero share, so the expectation ranks next-period orders by it."""
    result: FloatArray = (1.0 - silent) * np.maximum(given_any, 1.0)
    return result


def _growth(
    calibrator: BuyerCalibrator, s: Summary, btyd: BGNBD, *, window: float, horizon: float
) -> FloatArray:
    """log(orders given any over the horizon / over the window) to add to the count
    model's linear predictor evaluated at the horizon: its term in log E[BG/NBD orders]
    is moved back to the window ((1 - c) * (log E_horizon - log E_window) for that
    term's coefficient c), and the BG/NBD ratio of orders given any, horizon's to
    window's, applied."""
    names = [c.name for c in BUYER_COLUMNS]
    c = calibrator.count.coef[names.index(EXPECTED_COLUMN)]
    log_window = log_expected(btyd, s, window)
    log_horizon = log_expected(btyd, s, horizon)
    # Orders given any: BG/NBD's E[orders] / P(any order), at the horizon over the window.
    log_any_window = -np.logaddexp(0.0, btyd_logit(btyd, s, window))
    log_any_horizon = -np.logaddexp(0.0, btyd_logit(btyd, s, horizon))
    result: FloatArray = (1.0 - c) * (log_horizon - log_window) - (log_any_horizon - log_any_window)
    return result


def predict_prospects(calibrator: ProspectCalibrator, s: Summary) -> tuple[FloatArray, FloatArray]:
    """(P(no order in the horizon), expected orders) for customers without one."""
    n = s.x.size
    if calibrator.churn is None or calibrator.count is None:
        churn = np.full(n, calibrator.silent_rate)
        orders = (1.0 - churn) * calibrator.orders_if_buying
        return np.clip(churn, P_FLOOR, 1.0 - P_FLOOR), orders
    eta_churn, eta_count = linear_many((calibrator.churn, calibrator.count), prospect_columns(s), n)
    return _probabilities(eta_churn), response(eta_count, family="poisson")


def _probabilities(eta: FloatArray) -> FloatArray:
    result: FloatArray = np.clip(response(eta, family="logistic"), P_FLOOR, 1.0 - P_FLOOR)
    return result
