"""From histories to the numbers every model starts from: frequency, recency, T and spend.

This is lifetimes' / pymc-marketing's `rfm_summary` over the service's per-customer
arrays. It is also where bad input is made harmless (NaN, negative ages, inconsistent
counts), so no model below has to guard against it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.classification.engine.types import FloatArray, Histories, IntArray

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Summary:
    """Per-customer BTYD inputs (in days) and the other derived columns the engine uses."""

    buyer: BoolArray  # has at least one order
    x: FloatArray  # repeat purchases: distinct order days - 1 (BTYD "frequency")
    t_x: FloatArray  # first to last purchase, days (BTYD "recency" in FHL's sense)
    T: FloatArray  # first purchase to the cut-off, days
    recency: FloatArray  # days since the last purchase (0 for prospects)
    orders: FloatArray  # order events
    order_days: FloatArray  # distinct order days
    revenue: FloatArray  # gross order amount, >= 0
    refunds: FloatArray  # refunded amount, >= 0
    net: FloatArray  # revenue - refunds, floored at 0
    margin: FloatArray  # margin, 0 when unknown
    mean_spend: FloatArray  # gross amount per order (0 for prospects)
    activity_age: FloatArray  # days since any event (tenure when none)
    tenure: FloatArray  # days since first seen
    max_gap: FloatArray  # longest gap between order days, 0 when < 2 order days
    negative: FloatArray  # negative feedback count
    feedback: FloatArray  # feedback count
    rating: FloatArray  # mean rating 0-10, NaN when none
    inquiries: FloatArray
    interactions: FloatArray
    recent_contacts: FloatArray


def finite(values: FloatArray, fill: float = 0.0) -> FloatArray:
    """`values` with NaN and infinities replaced by `fill` (np.nan_to_num is slow on the
    tiny arrays of a single-customer request)."""
    result: FloatArray = np.where(np.isfinite(values), values, fill)
    return result


def _clean(values: FloatArray, fill: float = 0.0) -> FloatArray:
    """Finite (or `fill`) and not negative."""
    result: FloatArray = np.maximum(finite(values, fill), 0.0)
    return result


def _count(values: NDArray[np.int64]) -> FloatArray:
    return np.maximum(values.astype(np.float64), 0.0)


def summarise(h: Histories) -> Summary:
    orders = _count(h.orders)
    buyer = orders > 0
    # A buyer has at least one order day, whatever the source says.
    order_days = np.where(buyer, np.maximum(_count(h.order_days), 1.0), 0.0)
    order_days = np.minimum(order_days, np.maximum(orders, 1.0))
    last = _clean(h.last_order_age, fill=np.nan)
    first = _clean(h.first_order_age, fill=np.nan)
    tenure = _clean(h.tenure)
    # Missing ages of a buyer are filled from each other, then from tenure.
    first = np.where(np.isnan(first), np.where(np.isnan(last), tenure, last), first)
    last = np.where(np.isnan(last), first, last)
    T = np.where(buyer, first, 0.0)
    recency = np.where(buyer, np.minimum(last, first), 0.0)
    x = np.where(buyer, order_days - 1.0, 0.0)
    t_x = np.where(x > 0, T - recency, 0.0)
    revenue = _clean(h.revenue)
    refunds = _clean(h.refunds)
    activity = h.last_activity_age
    activity = np.where(np.isfinite(activity), np.maximum(activity, 0.0), tenure)
    return Summary(
        buyer=buyer,
        x=x,
        t_x=t_x,
        T=T,
        recency=recency,
        orders=orders,
        order_days=order_days,
        revenue=revenue,
        refunds=refunds,
        net=np.maximum(revenue - refunds, 0.0),
        margin=finite(h.margin),
        mean_spend=np.where(buyer, revenue / np.maximum(orders, 1.0), 0.0),
        activity_age=activity,
        tenure=np.maximum(tenure, T),
        max_gap=np.where(x > 0, _clean(h.max_gap), 0.0),
        negative=_count(h.negative_feedback),
        feedback=_count(h.feedback_count),
        rating=np.where(_count(h.feedback_count) > 0, h.rating_mean, np.nan),
        inquiries=_count(h.inquiries),
        interactions=_count(h.interactions),
        recent_contacts=_count(h.recent_contacts),
    )


def take(s: Summary, rows: IntArray) -> Summary:
    """The summary of rows `rows` only."""
    return Summary(**{name: getattr(s, name)[rows] for name in Summary.__dataclass_fields__})
