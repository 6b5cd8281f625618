"""From histories to model inputs: the BTYD summary and the calibrator's features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.classification.engine.btyd import BGNBD
from app.classification.engine.types import FloatArray, Histories

# Customers without an order still get a row; these stand in for their missing numbers.
_NO_ORDER_AGE = 0.0


@dataclass(frozen=True, slots=True)
class Summary:
    """BTYD's frequency / recency / T, in days, and spend per order (lifetimes' rfm_summary)."""

    x: FloatArray  # repeat purchases (distinct order days - 1)
    t_x: FloatArray  # first to last purchase, days
    T: FloatArray  # first purchase to cut-off, days
    recency: FloatArray  # last purchase to cut-off, days (NaN without orders)
    buyer: FloatArray  # 1.0 for customers with an order
    mean_spend: FloatArray  # net value per order


def summarise(h: Histories) -> Summary:
    buyer = (h.orders > 0).astype(np.float64)
    T = np.where(buyer > 0, np.nan_to_num(h.first_order_age, nan=_NO_ORDER_AGE), 0.0)
    recency = np.where(buyer > 0, np.nan_to_num(h.last_order_age, nan=0.0), np.nan)
    t_x = np.where(buyer > 0, np.maximum(T - np.nan_to_num(recency, nan=0.0), 0.0), 0.0)
    x = np.maximum(h.order_days.astype(np.float64) - 1.0, 0.0)
    # A single-day history has no span to measure.
    t_x = np.where(x > 0, t_x, 0.0)
    net = np.maximum(h.revenue - h.refunds, 0.0)
    mean_spend = np.where(h.orders > 0, net / np.maximum(h.orders, 1), 0.0)
    return Summary(x=x, t_x=t_x, T=T, recency=recency, buyer=buyer, mean_spend=mean_spend)


def usual_interval(s: Summary, population_interval: float, *, weight: float = 1.0) -> FloatArray:
    """The customer's own mean gap between order days, shrunk towards the population's
    typical gap: (t_x + k * pop) / (x + k). One-time buyers get the population's."""
    result: FloatArray = (s.t_x + weight * population_interval) / (s.x + weight)
    return result


# Feature columns and which of them may only raise churn risk (bounded coefficient).
FEATURES = (
    "logit_btyd_silent",  # monotone: grows with silence
    "log_recency_ratio",  # monotone
    "log_recency",  # monotone
    "log_activity_age",  # monotone
    "log_frequency",
    "log_age",
    "log_spend",
    "refund_share",
    "negative_feedback",
    "log_recent_contacts",
    "prospect",
)
MONOTONE_IN_SILENCE = (0, 1, 2, 3)
# Expected order counts leave spend and refunds out, so that spending more can only
# raise expected future value (count x spend per order), never lower it.
COUNT_COLUMNS = [0, 1, 2, 3, 4, 5, 8, 9, 10]


def churn_features(
    h: Histories, s: Summary, model: BGNBD, *, horizon: float, population_interval: float
) -> FloatArray:
    p_silent = np.clip(model.p_no_purchase(s.x, s.t_x, s.T, horizon), 1e-6, 1 - 1e-6)
    interval = usual_interval(s, population_interval)
    recency = np.nan_to_num(s.recency, nan=0.0)
    tenure = np.nan_to_num(h.tenure, nan=0.0)
    activity = np.where(np.isnan(h.last_activity_age), tenure, h.last_activity_age)
    refund_share = np.where(
        h.revenue > 0, np.clip(h.refunds / np.maximum(h.revenue, 1e-9), 0, 1), 0.0
    )
    columns = [
        np.where(s.buyer > 0, np.log(p_silent / (1 - p_silent)), 0.0),
        np.where(s.buyer > 0, np.log1p(recency / interval), 0.0),
        np.where(s.buyer > 0, np.log1p(recency), 0.0),
        np.log1p(activity),
        np.log1p(s.x),
        np.where(s.buyer > 0, np.log1p(s.T), np.log1p(tenure)),
        np.log1p(s.mean_spend),
        refund_share,
        (h.negative_feedback > 0).astype(np.float64),
        np.log1p(h.recent_contacts.astype(np.float64)),
        1.0 - s.buyer,
    ]
    return np.stack(columns, axis=1)
