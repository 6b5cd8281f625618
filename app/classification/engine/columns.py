"""Classify a batch into columns: what bulk storage needs, with no per-customer object.

The same placement as `classify` (`placement.place`), minus the reasons and the
result objects: tiers and stages as codes, numbers as arrays, and
segments and strategies as one entry per distinct combination plus a group id per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.classification.engine.model import PopulationModel
from app.classification.engine.placement import DECIMALS, place
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
    placed = place(histories, profiles, model, policy)
    return ClassifiedColumns(
        tier=placed.tier,
        tier_score=placed.scores,
        stage=np.asarray(placed.stage.code, dtype=np.int64),
        churn_probability=np.round(placed.future.churn, DECIMALS),
        expected_orders=np.round(placed.future.orders, DECIMALS),
        expected_revenue=np.round(placed.future.revenue, DECIMALS),
        segment_group=placed.segment_group,
        segments=placed.segments,
        strategy_group=placed.strategy_group,
        strategies=placed.strategies,
    )
