"""The population model: what is learned from all customers as of a cut-off, once.

BG/NBD gives each customer a model-based chance of silence and expected purchases;
a regularised logistic regression (and a Poisson one for counts), trained on how the
population actually behaved over the previous horizon, recalibrates them. Gamma-Gamma
gives spend per order. Quantile tables place a customer in the population (tier score,
RFM quintiles). Everything is plain floats, so the model round-trips through JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from app.classification.engine.btyd import BGNBD, PRIOR, fit_bgnbd
from app.classification.engine.features import (
    COUNT_COLUMNS,
    MONOTONE_IN_SILENCE,
    churn_features,
    summarise,
)
from app.classification.engine.regression import fit_glm
from app.classification.engine.spend import GammaGamma, fit_gamma_gamma
from app.classification.engine.types import EnginePolicy, FloatArray, Histories, Outcomes

# At most this many customers go into an optimiser; a fixed stride keeps it reproducible.
FIT_SAMPLE = 100_000
QUANTILES = np.linspace(0.0, 1.0, 201)
DEFAULT_INTERVAL = 60.0
PRIOR_SPEND = 100.0


@dataclass(frozen=True)
class PopulationModel:
    horizon_days: float
    source: str  # "fitted": learned from the population; "prior": too little data
    customers: int  # customers in the current population
    buyers: int  # of whom with an order
    trained_on: int  # customers in the calibration cohort (0: no calibration)
    bgnbd: tuple[float, float, float, float]
    spend: tuple[float, float, float] | None
    population_spend: float
    typical_interval: float
    churn_coef: tuple[float, ...] = ()
    count_coef: tuple[float, ...] = ()
    feature_mean: tuple[float, ...] = ()
    feature_scale: tuple[float, ...] = ()
    value_quantiles: tuple[float, ...] = ()
    recency_cuts: tuple[float, ...] = ()  # quintile edges of days since last order
    frequency_cuts: tuple[float, ...] = ()  # quintile edges of order days
    monetary_cuts: tuple[float, ...] = ()  # quintile edges of net revenue
    median_order_days: float = 2.0  # among repeat buyers
    median_order_value: float = PRIOR_SPEND
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PopulationModel:
        values = dict(data)
        for key, value in values.items():
            if isinstance(value, list):
                values[key] = tuple(value)
        return cls(**values)

    @property
    def btyd(self) -> BGNBD:
        return BGNBD(*self.bgnbd)

    @property
    def gamma_gamma(self) -> GammaGamma | None:
        return None if self.spend is None else GammaGamma(*self.spend)

    @property
    def calibrated(self) -> bool:
        return bool(self.churn_coef)


def _stride_sample(n: int) -> slice:
    return slice(None, None, max(1, -(-n // FIT_SAMPLE)))


def _cuts(values: FloatArray) -> tuple[float, ...]:
    if values.size == 0:
        return ()
    return tuple(float(v) for v in np.quantile(values, [0.2, 0.4, 0.6, 0.8]))


def _fit_btyd(h: Histories) -> BGNBD | None:
    s = summarise(h)
    buyers = s.buyer > 0
    if int(buyers.sum()) < 20 or int((s.x[buyers] > 0).sum()) < 5:
        return None
    pick = _stride_sample(int(buyers.sum()))
    return fit_bgnbd(s.x[buyers][pick], s.t_x[buyers][pick], s.T[buyers][pick])


def _typical_interval(h: Histories) -> float:
    s = summarise(h)
    repeat = s.x > 0
    if int(repeat.sum()) < 5:
        return DEFAULT_INTERVAL
    return float(np.median(s.t_x[repeat] / s.x[repeat]))


def value_of(h: Histories, expected_revenue: FloatArray, policy: EnginePolicy) -> FloatArray:
    """Past net value, profit contribution and expected future value, in the base currency."""
    past = np.maximum(h.revenue - h.refunds, 0.0)
    margin = np.nan_to_num(h.margin, nan=0.0)
    result: FloatArray = (
        past + policy.tier.margin_weight * margin + policy.tier.future_weight * expected_revenue
    )
    return result


def prior_model(
    *, horizon_days: float, policy: EnginePolicy, customers: int = 0, buyers: int = 0
) -> PopulationModel:
    return PopulationModel(
        horizon_days=float(horizon_days),
        source="prior",
        customers=customers,
        buyers=buyers,
        trained_on=0,
        bgnbd=PRIOR,
        spend=None,
        population_spend=PRIOR_SPEND,
        typical_interval=DEFAULT_INTERVAL,
    )


def fit_model(
    train: Histories,
    outcomes: Outcomes,
    current: Histories,
    *,
    horizon_days: float,
    policy: EnginePolicy,
) -> PopulationModel:
    """Learn the population as of T from `current`, calibrated on `train` -> `outcomes`."""
    # Imported here: classify builds on this module's model.
    from app.classification.engine.classify import expected_orders_and_revenue

    s_now = summarise(current)
    buyers = int((s_now.buyer > 0).sum())
    base = prior_model(
        horizon_days=horizon_days, policy=policy, customers=len(current), buyers=buyers
    )
    if buyers < max(policy.min_population, 20):
        return base

    btyd_now = _fit_btyd(current)
    if btyd_now is None:
        return base
    gg = fit_gamma_gamma(s_now.mean_spend, current.orders.astype(np.float64))
    interval = _typical_interval(current)
    model = PopulationModel(
        horizon_days=float(horizon_days),
        source="fitted",
        customers=len(current),
        buyers=buyers,
        trained_on=0,
        bgnbd=(btyd_now.r, btyd_now.alpha, btyd_now.a, btyd_now.b),
        spend=None if gg is None else (gg.p, gg.q, gg.v),
        population_spend=(
            gg.population_mean
            if gg is not None
            else float(np.mean(s_now.mean_spend[s_now.buyer > 0]))
        ),
        typical_interval=interval,
    )
    model = _calibrate(model, train, outcomes, policy=policy)

    # Population tables use the final model, so scores match what classify computes.
    _, revenue = expected_orders_and_revenue(current, model)
    values = value_of(current, revenue, policy)
    bought = current.orders > 0
    repeat = s_now.x > 0
    order_value = s_now.mean_spend
    return PopulationModel(
        **{
            **asdict(model),
            "value_quantiles": tuple(float(v) for v in np.quantile(values[bought], QUANTILES)),
            "recency_cuts": _cuts(np.nan_to_num(current.last_order_age[bought])),
            "frequency_cuts": _cuts(current.order_days[bought].astype(np.float64)),
            "monetary_cuts": _cuts(np.maximum(current.revenue - current.refunds, 0)[bought]),
            "median_order_days": float(np.median(current.order_days[repeat]))
            if repeat.any()
            else 2.0,
            "median_order_value": float(np.median(order_value[bought])),
        }
    )


def _calibrate(
    model: PopulationModel, train: Histories, outcomes: Outcomes, *, policy: EnginePolicy
) -> PopulationModel:
    """Fit the churn and count regressions on the previous horizon's cohort, if it allows."""
    s_train = summarise(train)
    train_buyers = int((s_train.buyer > 0).sum())
    silent = (outcomes.orders == 0).astype(np.float64)
    if (
        len(train) == 0
        or train_buyers < max(policy.min_population, 20)
        or silent.sum() < 10
        or (1 - silent).sum() < 10
    ):
        return model
    btyd_then = _fit_btyd(train) or model.btyd
    interval_then = _typical_interval(train)
    features = churn_features(
        train, s_train, btyd_then, horizon=model.horizon_days, population_interval=interval_then
    )
    pick = _stride_sample(len(train))
    features, silent, counts = (
        features[pick],
        silent[pick],
        outcomes.orders[pick].astype(np.float64),
    )
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    standard = (features - mean) / scale
    churn = fit_glm(standard, silent, family="logistic", nonnegative=MONOTONE_IN_SILENCE)
    count = fit_glm(standard[:, COUNT_COLUMNS], np.minimum(counts, 1000.0), family="poisson")
    return PopulationModel(
        **{
            **asdict(model),
            "trained_on": int(standard.shape[0]),
            "churn_coef": tuple(float(c) for c in churn),
            "count_coef": tuple(float(c) for c in count),
            "feature_mean": tuple(float(m) for m in mean),
            "feature_scale": tuple(float(v) for v in scale),
        }
    )
