"""Where a batch of customers stands: summary, forecast, tier, stage, segments and the
strategy of each distinct combination, column-wise.

The single source of these steps for both the per-customer result objects (`classify`)
and the bulk columns (`classify_columns`), so a stored answer and an on-demand one
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.classification.engine.estimate import Estimates, estimate
from app.classification.engine.grouping import group
from app.classification.engine.model import PopulationModel
from app.classification.engine.segments import Column, segment_columns
from app.classification.engine.stages import STAGES, StageResult, stages
from app.classification.engine.strategy import pick_strategy
from app.classification.engine.summary import Summary, summarise
from app.classification.engine.tiers import TIERS, tier_scores, tiers, value_of
from app.classification.engine.types import EnginePolicy, FloatArray, Histories, IntArray, Profile

DECIMALS = 4


@dataclass(frozen=True, slots=True)
class Placement:
    summary: Summary
    future: Estimates
    scores: FloatArray  # rounded before the cut-offs apply: the shown score explains the tier
    tier: IntArray  # index into TIERS
    stage: StageResult
    segment_group: IntArray  # index into `segments`
    segments: list[dict[str, object]]
    strategy_group: IntArray  # index into `strategies`
    strategies: list[tuple[str, int, int]]  # (code, priority, cadence_days)


def place(
    histories: Histories,
    profiles: Sequence[Profile],
    model: PopulationModel,
    policy: EnginePolicy,
) -> Placement:
    n = len(histories)
    if len(profiles) != n:
        raise ValueError(f"{n} histories but {len(profiles)} profiles")
    s = summarise(histories)
    future = estimate(s, model)
    values = value_of(s, future.revenue, policy.tier)
    scores = np.where(
        s.buyer,
        np.round(
            np.clip(tier_scores(values, model.value_table, model.typical_value), 0, 1), DECIMALS
        ),
        0.0,
    )
    tier = np.asarray(tiers(scores, values, s.buyer, policy.tier), dtype=np.int64)
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
    if n:
        # Rows with the same segments share a template; rows with the same template, tier
        # and stage share a strategy.
        template_ids, first = group([c.codes for c in columns], n)
        templates = [_template(columns, row) for row in first.tolist()]
        combo_ids, combo_first = group([template_ids, tier, stage.code], n)
    else:
        template_ids = first = combo_ids = combo_first = np.zeros(0, dtype=np.int64)
        templates = []
    strategies = [
        pick_strategy(
            policy,
            tier=TIERS[tier[row]],
            stage=STAGES[stage.code[row]],
            segment_values=templates[template_ids[row]].values(),
        )
        for row in combo_first.tolist()
    ]
    return Placement(
        summary=s,
        future=future,
        scores=scores,
        tier=tier,
        stage=stage,
        segment_group=template_ids,
        segments=templates,
        strategy_group=combo_ids,
        strategies=strategies,
    )


def _template(columns: list[Column], row: int) -> dict[str, object]:
    """Row `row`'s segments, without the keys it has no value for."""
    segments: dict[str, object] = {}
    for column in columns:
        value = column.vocabulary[column.codes[row]]
        if value is not None:
            segments[column.key] = value
    return segments
