"""Build engine inputs by hand for the pure engine tests."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from app.classification.engine import PopulationModel, fit_model
from app.classification.engine.simulate import simulate
from app.classification.engine.types import INT_FIELDS, EnginePolicy, Histories
from app.classification.service import to_engine_policy
from app.policies.default import default_document
from app.policies.schemas import PolicyDocument


def policy(**changes: Any) -> EnginePolicy:
    document = default_document()
    document.update(changes)
    return to_engine_policy(PolicyDocument.model_validate(document))


def history(**fields: Any) -> Histories:
    """One customer: three orders over 200 days, the last 10 days ago, unless overridden."""
    row: dict[str, Any] = {
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
    row.update(fields)
    return Histories(
        **{
            k: np.asarray([v], dtype=np.int64 if k in INT_FIELDS else np.float64)
            for k, v in row.items()
        }
    )


@lru_cache(maxsize=1)
def fitted_model() -> PopulationModel:
    """A model fitted on 20k simulated customers (as of day 800, horizon 180)."""
    sim = simulate(20_000, seed=3)
    horizon, cutoff = 180.0, 800.0
    return fit_model(
        sim.histories(cutoff - horizon),
        sim.outcomes(cutoff - horizon, cutoff),
        sim.histories(cutoff),
        horizon_days=horizon,
        policy=policy(),
    )
