"""Sub-segments and other dimensions of one classified customer."""

from __future__ import annotations

import numpy as np

from app.classification.engine.model import PopulationModel
from app.classification.engine.regions import region_of
from app.classification.engine.types import EnginePolicy, Histories, Profile

# Rows: R score 5..1; columns: FM score 1..5 (Shopify's RFM groups).
_RFM_GRID = {
    5: ("new", "promising", "active", "champions", "champions"),
    4: ("promising", "promising", "active", "loyal", "champions"),
    3: ("needs_attention", "needs_attention", "needs_attention", "loyal", "loyal"),
    2: ("almost_lost", "almost_lost", "at_risk", "previously_loyal", "previously_loyal"),
    1: ("dormant", "dormant", "at_risk", "at_risk", "previously_loyal"),
}
_CAPABLE_SIZES = {"medium", "large", "enterprise"}


def _quintile(value: float, cuts: tuple[float, ...], *, higher_is_better: bool) -> int:
    if not cuts:
        return 3
    rank = int(np.searchsorted(np.asarray(cuts), value, side="right"))  # 0..4
    return rank + 1 if higher_is_better else 5 - rank


def rfm_group(h: Histories, i: int, model: PopulationModel) -> str:
    if h.orders[i] == 0:
        return "prospects"
    # Lower recency (days since) is better: sit on the "better" side of ties.
    recency = float(np.nan_to_num(h.last_order_age[i], nan=0.0))
    r_cuts = model.recency_cuts
    r = 5 - int(np.searchsorted(np.asarray(r_cuts), recency, side="left")) if r_cuts else 3
    f = _quintile(float(h.order_days[i]), model.frequency_cuts, higher_is_better=True)
    m = _quintile(
        float(max(h.revenue[i] - h.refunds[i], 0.0)), model.monetary_cuts, higher_is_better=True
    )
    fm = min(5, max(1, int(np.floor((f + m) / 2 + 0.5))))
    return _RFM_GRID[r][fm - 1]


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
    won_back: bool,
    p_alive: float,
    tier: str,
) -> dict[str, object]:
    segs: dict[str, object] = {"rfm_group": rfm_group(h, i, model)}
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
