"""Sub-segments and other dimensions of one classified customer."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.classification.engine.model import PopulationModel
from app.classification.engine.regions import region_of
from app.classification.engine.types import (
    EnginePolicy,
    FloatArray,
    Histories,
    IntArray,
    Profile,
)

# Rows: R score 5..1; columns: FM score 1..5 (Shopify's RFM groups).
_RFM_GRID = {
    5: ("new", "promising", "active", "champions", "champions"),
    4: ("promising", "promising", "active", "loyal", "champions"),
    3: ("needs_attention", "needs_attention", "needs_attention", "loyal", "loyal"),
    2: ("almost_lost", "almost_lost", "at_risk", "previously_loyal", "previously_loyal"),
    1: ("dormant", "dormant", "at_risk", "at_risk", "previously_loyal"),
}
_CAPABLE_SIZES = {"medium", "large", "enterprise"}


def _scores(values: FloatArray, cuts: tuple[float, ...], *, lower_is_better: bool) -> IntArray:
    """Quintile scores 1-5 against the population's cut points (3 without a population)."""
    if not cuts:
        return np.full(values.shape, 3, dtype=np.int64)
    edges = np.asarray(cuts)
    if lower_is_better:
        # Fewer days since the last order is better; ties sit on the better side.
        return (5 - np.searchsorted(edges, values, side="left")).astype(np.int64)
    return (np.searchsorted(edges, values, side="right") + 1).astype(np.int64)


_GRID = np.array([_RFM_GRID[r] for r in (1, 2, 3, 4, 5)], dtype=object)


def rfm_groups(h: Histories, model: PopulationModel) -> np.ndarray[Any, Any]:
    """Shopify-style RFM group of every customer, from R and the mean of F and M."""
    r = _scores(np.nan_to_num(h.last_order_age, nan=0.0), model.recency_cuts, lower_is_better=True)
    f = _scores(h.order_days.astype(np.float64), model.frequency_cuts, lower_is_better=False)
    m = _scores(np.maximum(h.revenue - h.refunds, 0.0), model.monetary_cuts, lower_is_better=False)
    fm = np.clip(np.floor((f + m) / 2 + 0.5).astype(np.int64), 1, 5)
    groups = _GRID[r - 1, fm - 1]
    return np.where(h.orders > 0, groups, "prospects")


def _feedback(h: Histories, i: int) -> str | None:
    count = int(h.feedback_count[i])
    if count == 0:
        return None
    negative = int(h.negative_feedback[i])
    mean = float(h.rating_mean[i])
    if negative == 0 and mean >= 7:
        return "positive"
    if negative == count or mean < 5:
        return "negative"
    return "mixed"


def _dissatisfied(h: Histories, i: int) -> bool:
    revenue = float(h.revenue[i])
    refund_share = float(h.refunds[i]) / revenue if revenue > 0 else 0.0
    rating = float(h.rating_mean[i])
    return bool(
        h.negative_feedback[i] > 0 or (np.isfinite(rating) and rating < 5) or refund_share > 0.2
    )


def segments_for(
    h: Histories,
    i: int,
    profile: Profile,
    model: PopulationModel,
    policy: EnginePolicy,
    *,
    stage: str,
    rfm_group: str,
    won_back: bool,
    p_alive: float,
    tier: str,
) -> dict[str, object]:
    segs: dict[str, object] = {"rfm_group": rfm_group}
    if profile.country:
        if policy.home_country:
            segs["geography"] = (
                "domestic" if profile.country == policy.home_country else "international"
            )
        segs["country"] = profile.country
        region = region_of(profile.country)
        if region:
            segs["region"] = region
    for key in ("customer_type", "role", "industry", "company_size"):
        value = getattr(profile, key)
        if value:
            segs[key] = value
    feedback = _feedback(h, i)
    if feedback:
        segs["feedback"] = feedback
    if h.orders[i] > 0:
        segs["won_back"] = won_back
    if stage == "prospect":
        intent = (
            "high_intent"
            if h.recent_contacts[i] >= 2 or (h.inquiries[i] >= 1 and h.recent_contacts[i] >= 1)
            else "low_intent"
        )
        capable = (
            profile.company_size in _CAPABLE_SIZES
            or profile.role == "distributor"
            or (profile.customer_type == "business" and profile.company_size is None)
        )
        segs["intent_ability"] = f"{intent}_{'high_ability' if capable else 'low_ability'}"
    if stage == "loyal":
        frequent = h.order_days[i] >= model.median_order_days
        orders = max(int(h.orders[i]), 1)
        large = (float(h.revenue[i]) - float(h.refunds[i])) / orders >= model.median_order_value
        segs["frequency_amount"] = (
            f"{'high' if frequent else 'low'}_frequency_{'high' if large else 'low'}_amount"
        )
    if stage in ("churned", "at_risk"):
        segs["churn_reason"] = "dissatisfied" if _dissatisfied(h, i) else "unknown"
    if stage == "churned":
        valuable = tier in ("high", "mid")
        segs["win_back_potential"] = (
            "high"
            if valuable and p_alive >= 0.2
            else "medium"
            if valuable or p_alive >= 0.3
            else "low"
        )
    if profile.role == "distributor":
        segs["partner_stage"] = (
            "development"
            if stage in ("prospect", "new")
            else "deepening"
            if stage == "loyal"
            else "maintenance"
        )
    return segs
