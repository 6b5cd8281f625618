"""Each customer's future over the horizon: P(no order), expected orders and revenue.

With a calibrator, the recalibrated regressions; when Pareto/NBD validated best, its
P(no purchase) and expected purchases (pareto_nbd.py); otherwise BG/NBD (FHL 2005 eq. 10
and P(no purchase)), its probability Platt-scaled when that validated best. Expected
revenue is expected orders times the Gamma-Gamma expected spend per order, net of the
customer's (shrunk) refund share. A customer with no repeat purchase gets the
population's expected spend, as Gamma-Gamma is meant to be used (Fader, Hardie & Lee
2005b model repeat transactions): one order says little about the next one's size, and
the first is often of its own kind (a trial, an offer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.classification.engine.btyd import BGNBD
from app.classification.engine.calibration import P_FLOOR, predict_buyers, predict_prospects
from app.classification.engine.model import PopulationModel
from app.classification.engine.pareto_nbd import ParetoNBD
from app.classification.engine.platt import predict_platt
from app.classification.engine.recalibration import apply_map
from app.classification.engine.summary import Summary, finite
from app.classification.engine.types import FloatArray

# How many of the customer's own order days count against the population's ratio of
# orders to order days, and how many typical orders against its refund share.
SHRINK_DAYS = 1.0
SHRINK_ORDERS = 1.0


@dataclass(frozen=True, slots=True)
class Estimates:
    churn: FloatArray  # P(no order in the horizon)
    orders: FloatArray  # expected orders in the horizon
    revenue: FloatArray  # expected net revenue in the horizon
    p_alive: FloatArray  # the answering BTYD model's P(still active) (1 for prospects)


def refund_share(s: Summary, model: PopulationModel) -> FloatArray:
    """The customer's share of spend refunded, shrunk towards the population's by one
    typical order: never rising with revenue, so more spend never lowers value."""
    weight = model.mean_order_value * SHRINK_ORDERS
    result: FloatArray = np.clip(
        (s.refunds + model.refund_share * weight) / np.maximum(s.revenue + weight, 1e-300),
        0.0,
        1.0,
    )
    return np.where((s.revenue + weight) > 0, result, model.refund_share)


def _btyd_only(
    s: Summary, model: PopulationModel, btyd: BGNBD | ParetoNBD
) -> tuple[FloatArray, FloatArray]:
    horizon = model.horizon_days
    churn = np.clip(btyd.p_no_purchase(s.x, s.t_x, s.T, horizon), P_FLOOR, 1.0 - P_FLOOR)
    # BTYD models count order days; a customer's orders per order day turn them into orders.
    per_day = (s.orders + SHRINK_DAYS * model.orders_per_day) / (s.order_days + SHRINK_DAYS)
    orders = btyd.expected_purchases(s.x, s.t_x, s.T, horizon) * per_day
    return churn, orders


def estimate(s: Summary, model: PopulationModel) -> Estimates:
    """The future of every row over the model's horizon."""
    btyd = model.btyd
    pnbd = model.pnbd
    if pnbd is not None:
        churn, orders = _btyd_only(s, model, pnbd)
    elif model.calibrator is not None:
        churn, orders = predict_buyers(
            model.calibrator,
            s,
            btyd,
            horizon=model.horizon_days,
            population_interval=model.typical_interval,
            window=model.window_days,
            ranks=model.ranks,
        )
    else:
        churn, orders = _btyd_only(s, model, btyd)
        if model.platt is not None:
            churn = predict_platt(model.platt, s, btyd, horizon=model.horizon_days)
    if model.final_map is not None:
        churn = apply_map(model.final_map, churn)
    if not bool(s.buyer.all()):
        prospect_churn, prospect_orders = predict_prospects(model.prospects, s)
        churn = np.where(s.buyer, churn, prospect_churn)
        orders = np.where(s.buyer, orders, prospect_orders)
    orders = np.maximum(finite(orders), 0.0)
    churn = finite(churn, 1.0 - P_FLOOR)
    spend = model.spend_model.expected_spend(s.mean_spend, np.where(s.x > 0, s.orders, 0.0))
    revenue = orders * np.maximum(finite(spend), 0.0) * (1.0 - refund_share(s, model))
    alive = (pnbd if pnbd is not None else btyd).p_alive(s.x, s.t_x, s.T)
    p_alive = np.where(s.buyer, alive, 1.0)
    return Estimates(churn=churn, orders=orders, revenue=revenue, p_alive=p_alive)
