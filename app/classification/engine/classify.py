"""Classify a batch of customers against a population model and a policy.

Everything up to building the per-customer results is vectorised, so one customer and a
million customers run the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.classification.engine.features import (
    COUNT_COLUMNS,
    Summary,
    churn_features,
    summarise,
    usual_interval,
)
from app.classification.engine.model import PopulationModel, value_of
from app.classification.engine.regression import predict
from app.classification.engine.segments import rfm_groups, segments_for
from app.classification.engine.strategy import pick_strategy
from app.classification.engine.types import (
    Classification,
    EnginePolicy,
    FloatArray,
    Histories,
    IntArray,
    Profile,
    Reason,
)

STAGES = np.array(["prospect", "new", "returning", "loyal", "at_risk", "churned"])


def expected_orders_and_revenue(
    h: Histories,
    model: PopulationModel,
    *,
    s: Summary | None = None,
    standard: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    s = s if s is not None else summarise(h)
    btyd = model.btyd
    horizon = model.horizon_days
    if model.calibrated:
        standard = standard if standard is not None else _standard(h, s, model)
        orders = predict(np.asarray(model.count_coef), standard[:, COUNT_COLUMNS], family="poisson")
    else:
        orders = btyd.expected_purchases(s.x, s.t_x, s.T, horizon)
        # BG/NBD says nothing about customers who never bought: a small base rate.
        orders = np.where(s.buyer > 0, orders, 0.05 * horizon / model.typical_interval)
    orders = np.clip(np.nan_to_num(orders, nan=0.0), 0.0, 1e6)
    gg = model.gamma_gamma
    spend = (
        gg.expected_spend(s.mean_spend, h.orders.astype(np.float64))
        if gg is not None
        else np.where(
            h.orders > 0,
            (s.mean_spend * h.orders + model.population_spend) / (h.orders + 1.0),
            model.population_spend,
        )
    )
    refund_share = np.where(
        h.revenue > 0, np.clip(h.refunds / np.maximum(h.revenue, 1e-9), 0, 1), 0.0
    )
    revenue: FloatArray = orders * np.maximum(spend, 0.0) * (1.0 - refund_share)
    return orders, revenue


def _standard(h: Histories, s: Summary, model: PopulationModel) -> FloatArray:
    features = churn_features(
        h, s, model.btyd, horizon=model.horizon_days, population_interval=model.typical_interval
    )
    result: FloatArray = (features - np.asarray(model.feature_mean)) / np.asarray(
        model.feature_scale
    )
    return result


def churn_probability(
    h: Histories,
    model: PopulationModel,
    *,
    s: Summary | None = None,
    standard: FloatArray | None = None,
) -> FloatArray:
    """P(no order in the horizon): the calibrated regression, or BG/NBD alone."""
    if model.calibrated:
        s = s if s is not None else summarise(h)
        standard = standard if standard is not None else _standard(h, s, model)
        return predict(np.asarray(model.churn_coef), standard, family="logistic")
    s = s if s is not None else summarise(h)
    p = model.btyd.p_no_purchase(s.x, s.t_x, s.T, model.horizon_days)
    # Never-buyers: an exponential waiting time at a tenth of the typical buying rate.
    prospect = np.exp(-0.1 * model.horizon_days / model.typical_interval)
    result: FloatArray = np.where(s.buyer > 0, p, prospect)
    return result


def tier_scores(values: FloatArray, h: Histories, model: PopulationModel) -> FloatArray:
    """The value's percentile in the population as of T (0 without orders)."""
    table = np.asarray(model.value_quantiles)
    if table.size < 2:
        # No population yet: a smooth, monotone stand-in around the prior spend.
        scores = values / (values + 5.0 * model.population_spend)
    else:
        scores = np.interp(values, table, np.linspace(0.0, 1.0, table.size))
        # Ties at the low end (many equal values) should not jump to the top of the tie.
        scores = np.where(values <= table[0], 0.0, scores)
    result: FloatArray = np.where(h.orders > 0, scores, 0.0)
    return result


def _tiers(scores: FloatArray, values: FloatArray, policy: EnginePolicy) -> np.ndarray[Any, Any]:
    rules = policy.tier
    measure = scores if rules.method == "percentile" else values
    return np.where(measure >= rules.high, "high", np.where(measure >= rules.mid, "mid", "low"))


def stages(
    h: Histories, model: PopulationModel, policy: EnginePolicy, *, s: Summary | None = None
) -> tuple[np.ndarray[Any, Any], FloatArray, np.ndarray[Any, Any]]:
    """Stage codes, each customer's usual interval, and the won-back flags."""
    rules = policy.stage
    s = s if s is not None else summarise(h)
    interval = usual_interval(s, model.typical_interval)
    recency = np.nan_to_num(s.recency, nan=0.0)
    at_risk_after = np.maximum(rules.min_at_risk_days, rules.at_risk_multiple * interval)
    churn_after = np.maximum(rules.min_churn_days, rules.churn_multiple * interval)
    # Won back: a gap that would have meant churn, judged by the rhythm without that gap.
    max_gap = np.nan_to_num(h.max_gap, nan=0.0)
    rhythm_without_gap = (np.maximum(s.t_x - max_gap, 0.0) + model.typical_interval) / np.maximum(
        s.x, 1.0
    )
    won_back = (s.x > 0) & (
        max_gap > np.maximum(rules.min_churn_days, rules.churn_multiple * rhythm_without_gap)
    )
    loyal = (h.order_days >= rules.loyal_min_orders) & (rules.loyal_min_tenure_days <= s.T)
    stage = np.select(
        [
            s.buyer == 0,
            recency > churn_after,
            recency > at_risk_after,
            (h.order_days <= 1) & (recency <= rules.new_max_days),
            h.order_days <= 1,
            loyal,
        ],
        ["prospect", "churned", "at_risk", "new", "at_risk", "loyal"],
        default="returning",
    )
    return stage, interval, won_back


def classify(
    histories: Histories,
    profiles: Sequence[Profile],
    model: PopulationModel,
    policy: EnginePolicy,
) -> list[Classification]:
    h = histories
    if len(h) == 0:
        return []
    # The summary and the standardised features are computed once for every use below.
    s = summarise(h)
    standard = _standard(h, s, model) if model.calibrated else None
    orders_ahead, revenue_ahead = expected_orders_and_revenue(h, model, s=s, standard=standard)
    churn = np.clip(churn_probability(h, model, s=s, standard=standard), 0.0, 1.0)
    values = value_of(h, revenue_ahead, policy)
    scores = tier_scores(values, h, model)
    tiers = np.where(h.orders > 0, _tiers(scores, values, policy), "low")
    stage, interval, won_back = stages(h, model, policy, s=s)
    p_alive = model.btyd.p_alive(s.x, s.t_x, s.T)
    groups = rfm_groups(h, model)
    recency = np.nan_to_num(h.last_order_age, nan=0.0)

    results = []
    for i, profile in enumerate(profiles):
        segs = segments_for(
            h,
            i,
            profile,
            model,
            policy,
            stage=str(stage[i]),
            rfm_group=str(groups[i]),
            won_back=bool(won_back[i]),
            p_alive=float(p_alive[i]),
            tier=str(tiers[i]),
        )
        rule = pick_strategy(policy, tier=str(tiers[i]), stage=str(stage[i]), segments=segs)
        results.append(
            Classification(
                tier=str(tiers[i]),  # type: ignore[arg-type]
                tier_score=round(float(scores[i]), 4),
                stage=str(stage[i]),  # type: ignore[arg-type]
                strategy=rule[0],
                priority=rule[1],
                cadence_days=rule[2],
                segments=segs,
                churn_probability=round(float(churn[i]), 4),
                expected_orders=round(float(orders_ahead[i]), 4),
                expected_revenue=round(float(revenue_ahead[i]), 2),
                reasons=_reasons(
                    h,
                    i,
                    model,
                    stage=str(stage[i]),
                    recency=float(recency[i]),
                    interval=float(interval[i]),
                    churn=float(churn[i]),
                    score=float(scores[i]),
                    won_back=bool(won_back[i]),
                    segments=segs,
                ),
            )
        )
    return results


def _int(values: IntArray, i: int) -> int:
    return int(values[i])


def _reasons(
    h: Histories,
    i: int,
    model: PopulationModel,
    *,
    stage: str,
    recency: float,
    interval: float,
    churn: float,
    score: float,
    won_back: bool,
    segments: dict[str, object],
) -> tuple[Reason, ...]:
    reasons: list[Reason] = []
    orders = _int(h.orders, i)
    if stage == "prospect":
        contacts = _int(h.inquiries, i) + _int(h.interactions, i)
        if contacts:
            reasons.append(
                Reason(
                    "prospect_contacts",
                    {"contacts": contacts, "recent": _int(h.recent_contacts, i)},
                )
            )
        else:
            reasons.append(Reason("prospect_no_activity", {}))
    elif stage in ("at_risk", "churned"):
        if _int(h.order_days, i) > 1:
            reasons.append(
                Reason("silence_vs_cadence", {"days": round(recency), "usual": round(interval)})
            )
        else:
            reasons.append(
                Reason("single_order_silence", {"days": round(recency), "usual": round(interval)})
            )
    elif stage == "new":
        reasons.append(Reason("first_order", {"days": round(recency)}))
    elif stage == "loyal":
        reasons.append(
            Reason(
                "loyal_history",
                {
                    "order_days": _int(h.order_days, i),
                    "months": round(float(h.first_order_age[i]) / 30.4),
                    "usual": round(interval),
                },
            )
        )
    else:
        reasons.append(
            Reason(
                "returning",
                {
                    "order_days": _int(h.order_days, i),
                    "days": round(recency),
                    "usual": round(interval),
                },
            )
        )
    if won_back:
        reasons.append(Reason("won_back", {"gap": round(float(h.max_gap[i]))}))
    if orders > 0:
        reasons.append(Reason("value_percentile", {"percent": round(score * 100)}))
    if segments.get("churn_reason") == "dissatisfied" or (
        stage not in ("prospect",) and _int(h.negative_feedback, i) > 0
    ):
        reasons.append(
            Reason(
                "dissatisfied",
                {"negative": _int(h.negative_feedback, i), "refunds": _int(h.refund_count, i)},
            )
        )
    reasons.append(
        Reason(
            "churn_probability",
            {"percent": round(churn * 100), "horizon": round(model.horizon_days)},
        )
    )
    if model.source == "prior":
        reasons.append(Reason("priors", {"buyers": model.buyers}))
    return tuple(reasons)
