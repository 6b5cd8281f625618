"""Classify a batch of customers against a population model and a policy.

Everything is computed column-wise over the batch; the only per-customer Python loop
assembles the result objects, reusing identical segment templates, strategies and
reasons. One customer and a million run the same code.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence

import numpy as np

from app.classification.engine.explain import Facts, explain
from app.classification.engine.grouping import spread
from app.classification.engine.model import PopulationModel
from app.classification.engine.placement import DECIMALS, place
from app.classification.engine.reasons import MAP_NAMES, MODEL_NAMES
from app.classification.engine.stages import STAGES
from app.classification.engine.tiers import TIERS
from app.classification.engine.types import (
    Classification,
    EnginePolicy,
    Histories,
    Profile,
    Reason,
)

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
    placed = place(histories, profiles, model, policy)
    s, future, stage, scores = placed.summary, placed.future, placed.stage, placed.scores
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
    # Rows share their segment template (copied per row, as callers may mutate theirs)
    # and their strategy with the other rows of their group.
    templates, template_ids = placed.segments, placed.segment_group
    rules, combo_ids = placed.strategies, placed.strategy_group
    tier = placed.tier
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
    if model.final_map is not None:
        name = f"{name}, {MAP_NAMES[model.final_map.kind]}"
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
