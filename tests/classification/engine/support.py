"""Pure helpers for the engine tests: hand-made histories and a cached fitted model."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from app.classification.engine import PopulationModel, fit_model
from app.classification.engine.simulate import simulate
from app.classification.engine.types import (
    INT_FIELDS,
    EnginePolicy,
    Histories,
    StrategyRule,
)

POLICY = EnginePolicy(
    home_country="CN",
    strategies=(
        StrategyRule(
            "high_churned_dissatisfied", 1, 14, tier="high", stage="churned", segment="dissatisfied"
        ),
        StrategyRule("high_at_risk", 1, 7, tier="high", stage="at_risk"),
        StrategyRule("prospect_hot", 1, 7, stage="prospect", segment="high_intent_high_ability"),
        StrategyRule("prospect", 4, 30, stage="prospect"),
    ),
)

ROW: dict[str, Any] = {
    "orders": 3,
    "order_days": 3,
    "first_order_age": 200.0,
    "last_order_age": 10.0,
    "revenue": 300.0,
    "refunds": 0.0,
    "refund_count": 0,
    "margin": np.nan,
    "max_gap": 100.0,
    "last_gap": 90.0,
    "inquiries": 0,
    "interactions": 0,
    "recent_contacts": 0,
    "feedback_count": 0,
    "rating_mean": np.nan,
    "negative_feedback": 0,
    "last_activity_age": 10.0,
    "tenure": 200.0,
}

PROSPECT: dict[str, Any] = {
    "orders": 0,
    "order_days": 0,
    "first_order_age": np.nan,
    "last_order_age": np.nan,
    "revenue": 0.0,
    "max_gap": np.nan,
    "last_gap": np.nan,
    "last_activity_age": 20.0,
    "tenure": 60.0,
}


def rows(*changes: dict[str, Any]) -> Histories:
    """One customer per dict: ROW with the dict's fields changed."""
    table = [{**ROW, **change} for change in changes]
    columns: dict[str, Any] = {
        name: np.asarray(
            [row[name] for row in table], dtype=np.int64 if name in INT_FIELDS else np.float64
        )
        for name in ROW
    }
    return Histories(**columns)


def one(**fields: Any) -> Histories:
    return rows(fields)


HORIZON = 180.0
CUTOFF = 800.0


@lru_cache(maxsize=1)
def fitted() -> PopulationModel:
    """Fitted on 20k simulated customers as of day 800 (horizon 180), calibrated on
    the cohort as of day 620."""
    sim = simulate(20_000, seed=3)
    return fit_model(
        sim.histories(CUTOFF - HORIZON),
        sim.outcomes(CUTOFF - HORIZON, CUTOFF),
        sim.histories(CUTOFF),
        horizon_days=HORIZON,
        policy=POLICY,
    )
