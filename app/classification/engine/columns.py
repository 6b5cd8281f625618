"""Classify a batch into columns: what bulk storage needs, with no per-customer object.

The same steps as `classify` up to the strategy (same functions, same rounding), minus
the reasons and the result objects: tiers and stages as codes, numbers as arrays, and
segments and strategies as one entry per distinct combination plus a group id per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.classification.engine.classify import DECIMALS, _template
from app.classification.engine.estimate import estimate
from app.classification.engine.grouping import group
from app.classification.engine.model import PopulationModel
from app.classification.engine.segments import segment_columns
from app.classification.engine.stages import STAGES, stages
from app.classification.engine.strategy import pick_strategy
from app.classification.engine.summary import summarise
from app.classification.engine.tiers import TIERS, tier_scores, tiers, value_of
from app.classification.engine.types import (
    EnginePolicy,
    FloatArray,
    Histories,
    IntArray,
    Profile,
)


@dataclass(frozen=True, slots=True)
class ClassifiedColumns:
    tier: IntArray  # index into TIERS
    tier_score: FloatArray
    stage: IntArray  # index into STAGES
    churn_probability: FloatArray
    expected_orders: FloatArray
    expected_revenue: FloatArray
    segment_group: IntArray  # index into segments
    segments: list[dict[str, object]]
    strategy_group: IntArray  # index into strategies
    strategies: list[tuple[str, int, int]]  # (code, priority, cadence_days)

    def __len__(self) -> int:
        return int(self.tier.shape[0])


def classify_columns(
    histories: Histories,
    profiles: Sequence[Profile],
    model: PopulationModel,
    policy: EnginePolicy,
) -> ClassifiedColumns:
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
    tier = tiers(scores, values, s.buyer, policy.tier)
    stage = stages(s, model.typical_interval, policy.stage)
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
    return ClassifiedColumns(
        tier=np.asarray(tier, dtype=np.int64),
        tier_score=scores,
        stage=np.asarray(stage.code, dtype=np.int64),
        churn_probability=np.round(future.churn, DECIMALS),
        expected_orders=np.round(future.orders, DECIMALS),
        expected_revenue=np.round(future.revenue, DECIMALS),
        segment_group=template_ids,
        segments=templates,
        strategy_group=combo_ids,
        strategies=strategies,
    )
