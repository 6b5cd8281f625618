"""Classify a batch of customers against a population model and a policy.

Everything is computed column-wise over the batch; the only per-customer Python loop
assembles the result objects, reusing identical segment templates, strategies and
reasons. One customer and a million run the same code.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence

import numpy as np

from app.classification.engine.estimate import estimate
from app.classification.engine.explain import Facts, explain
from app.classification.engine.grouping import group, spread
from app.classification.engine.model import PopulationModel
from app.classification.engine.reasons import MODEL_NAMES
from app.classification.engine.segments import Column, segment_columns
from app.classification.engine.stages import STAGES, stages
from app.classification.engine.strategy import pick_strategy
from app.classification.engine.summary import summarise
from app.classification.engine.tiers import TIERS, tier_scores, tiers, value_of
from app.classification.engine.types import (
    Classification,
    EnginePolicy,
    Histories,
    Profile,
    Reason,
)

DECIMALS = 4
LARGE_BATCH = 10_000


def classify(
    histories: Histories,
    profiles: Sequence[Profile],
    model: PopulationModel,
    policy: EnginePolicy,
) -> list[Classification]:
    """One Classification per row of `histories`, in order; `profiles` align with it.

    Probabilities, expectations and scores are rounded to 4 decimals so that float
    noise never shows; the same inputs give identical results.
    """
    n = len(histories)
    if len(profiles) != n:
        raise ValueError(f"{n} histories but {len(profiles)} profiles")
    if n == 0:
        return []
    if n < LARGE_BATCH or not gc.isenabled():
        return _classify(histories, profiles, model, policy)
    # Millions of new objects, none of them cyclic: the cyclic collector would only
    # rescan them again and again while they are made.
    gc.disable()
    try:
        return _classify(histories, profiles, model, policy)
    finally:
        gc.enable()


def _classify(
    histories: Histories,
    profiles: Sequence[Profile],
    model: PopulationModel,
    policy: EnginePolicy,
) -> list[Classification]:
    n = len(histories)
    s = summarise(histories)
    future = estimate(s, model)
    values = value_of(s, future.revenue, policy.tier)
    # Scores are rounded before the cut-offs apply, so the shown score explains the tier.
    scores = np.where(
        s.buyer,
        np.round(
            np.clip(tier_scores(values, model.value_table, model.typical_value), 0, 1), DECIMALS
        ),
        0.0,
    )
    tier = tiers(scores, values, s.buyer, policy.tier)
    # Probability bounds only where the probability was validated on real outcomes.
    validated = model.validated is not None
    stage = stages(
        s, model.typical_interval, policy.stage, churn=future.churn if validated else None
    )
    columns = segment_columns(
        s,
        profiles,
        policy,
        model.population,
        stage=stage.code,
        tier=tier,
        won_back=stage.won_back,
        p_alive=future.p_alive,
    )
    reasons = explain(
        s,
        Facts(
            stage=stage,
            churn=future.churn,
            scores=scores,
            horizon_days=model.horizon_days,
            priors_buyers=model.buyers if model.source == "prior" else None,
            model=model_reason(model),
        ),
    )
    churn = np.round(future.churn, DECIMALS).tolist()
    orders = np.round(future.orders, DECIMALS).tolist()
    revenue = np.round(future.revenue, DECIMALS).tolist()
    # Rows with the same segments share a template dict (copied per row, as callers may
    # mutate theirs); rows with the same template, tier and stage share a strategy.
    template_ids, first = group([c.codes for c in columns], n)
    templates = [_template(columns, row) for row in first.tolist()]
    combo_ids, combo_first = group([template_ids, tier, stage.code], n)
    rules = [
        pick_strategy(
            policy,
            tier=TIERS[tier[row]],
            stage=STAGES[stage.code[row]],
            segment_values=templates[template_ids[row]].values(),
        )
        for row in combo_first.tolist()
    ]
    rows = zip(
        spread(templates, template_ids),
        spread(rules, combo_ids),
        spread(TIERS, tier),
        spread(STAGES, stage.code),
        scores.tolist(),
        churn,
        orders,
        revenue,
        reasons,
        strict=True,
    )
    return [
        Classification(
            tier=tier_code,
            tier_score=score,
            stage=stage_code,
            strategy=rule[0],
            priority=rule[1],
            cadence_days=rule[2],
            segments=dict(template),
            churn_probability=p,
            expected_orders=n_orders,
            expected_revenue=value,
            reasons=why,
        )
        for template, rule, tier_code, stage_code, score, p, n_orders, value, why in rows
    ]


def model_reason(model: PopulationModel) -> Reason | None:
    """Which model answered for customers with an order, and how it validated."""
    if model.source == "prior":
        return None
    name = MODEL_NAMES.get(model.answer, model.answer)
    checked = model.validated
    if checked is None:
        return Reason("model_unvalidated", {"model": name})
    return Reason(
        "model_validated",
        {
            "model": name,
            "customers": checked.customers,
            "days": round(checked.window_days),
            "auc": round(checked.auc, 2),
            "brier": round(checked.brier, 3),
        },
    )


def _template(columns: list[Column], row: int) -> dict[str, object]:
    """Row `row`'s segments, without the keys it has no value for."""
    segments: dict[str, object] = {}
    for column in columns:
        value = column.vocabulary[column.codes[row]]
        if value is not None:
            segments[column.key] = value
    return segments
