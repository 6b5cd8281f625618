"""Properties: the same input gives the same answer; more spend never lowers the tier
score; a longer silence never lowers the churn probability; results stay in range; a
customer gets the same answer alone and in a batch."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.classification.engine import PopulationModel, classify, fit_model, prior_model
from app.classification.engine.recalibration import FinalMap
from app.classification.engine.regression import Glm
from app.classification.engine.simulate import simulate
from app.classification.engine.types import Outcomes, Profile
from tests.classification.engine.support import CUTOFF, HORIZON, POLICY, PROSPECT, fitted, rows


@lru_cache(maxsize=1)
def uncalibrated() -> PopulationModel:
    """BG/NBD alone: the cohort's outcomes are degenerate (nobody ordered)."""
    sim = simulate(5_000, seed=12)
    train = sim.histories(CUTOFF - HORIZON)
    nobody = Outcomes(orders=np.zeros(len(train), dtype=np.int64), revenue=np.zeros(len(train)))
    model = fit_model(train, nobody, sim.histories(CUTOFF), horizon_days=HORIZON, policy=POLICY)
    assert model.source == "fitted" and not model.calibrated
    return model


@lru_cache(maxsize=1)
def platt_scaled() -> PopulationModel:
    """BG/NBD with Platt scaling answering (a flatter, shifted logit)."""
    return replace(uncalibrated(), answer="bgnbd_platt", platt=Glm(intercept=0.4, coef=(0.6,)))


@lru_cache(maxsize=1)
def final_mapped() -> PopulationModel:
    """The calibration layer with a final map on top (a sharper, shifted logit)."""
    return replace(fitted(), final_map=FinalMap("platt", intercept=-0.3, coef=(1.4,)))


@lru_cache(maxsize=1)
def beta_mapped() -> PopulationModel:
    """The calibration layer with a beta map: the two tails corrected apart."""
    return replace(fitted(), final_map=FinalMap("beta", intercept=0.2, coef=(0.7, 1.3)))


def models() -> list[PopulationModel]:
    return [
        fitted(),
        uncalibrated(),
        platt_scaled(),
        final_mapped(),
        beta_mapped(),
        prior_model(horizon_days=HORIZON, policy=POLICY),
    ]


@st.composite
def buyers(draw: st.DrawFn) -> dict[str, Any]:
    order_days = draw(st.integers(1, 60))
    first = draw(st.floats(0.0, 3000.0, allow_nan=False, allow_infinity=False))
    last = (
        first * draw(st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False))
        if order_days > 1
        else first
    )
    span = first - last
    revenue = draw(st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False))
    negative = draw(st.integers(0, 3))
    feedback = negative + draw(st.integers(0, 3))
    return {
        "orders": order_days + draw(st.integers(0, 5)),
        "order_days": order_days,
        "first_order_age": first,
        "last_order_age": last,
        "revenue": revenue,
        "refunds": revenue * draw(st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)),
        "refund_count": draw(st.integers(0, 3)),
        "margin": draw(
            st.one_of(
                st.just(math.nan), st.floats(-1e4, 1e5, allow_nan=False, allow_infinity=False)
            )
        ),
        "max_gap": span * draw(st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False))
        if order_days > 1
        else math.nan,
        "last_gap": math.nan,
        "inquiries": draw(st.integers(0, 5)),
        "interactions": draw(st.integers(0, 5)),
        "recent_contacts": draw(st.integers(0, 3)),
        "feedback_count": feedback,
        "rating_mean": draw(st.floats(0.0, 10.0, allow_nan=False, allow_infinity=False))
        if feedback
        else math.nan,
        "negative_feedback": negative,
        "last_activity_age": last
        * draw(st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)),
        "tenure": first + draw(st.floats(0.0, 500.0, allow_nan=False, allow_infinity=False)),
    }


@st.composite
def prospects(draw: st.DrawFn) -> dict[str, Any]:
    tenure = draw(st.floats(0.0, 3000.0, allow_nan=False, allow_infinity=False))
    return {
        **PROSPECT,
        "inquiries": draw(st.integers(0, 5)),
        "interactions": draw(st.integers(0, 5)),
        "recent_contacts": draw(st.integers(0, 3)),
        "last_activity_age": tenure
        * draw(st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)),
        "tenure": tenure,
    }


customers = st.one_of(buyers(), prospects())
profiles = st.builds(
    Profile,
    country=st.sampled_from([None, "CN", "DE", "us", "BR", "ZZ"]),
    customer_type=st.sampled_from([None, "individual", "business"]),
    role=st.sampled_from([None, "end_customer", "distributor"]),
    company_size=st.sampled_from([None, "micro", "large"]),
)


def _one(fields: dict[str, Any], model: PopulationModel, profile: Profile | None = None):  # type: ignore[no-untyped-def]
    return classify(rows(fields), [profile or Profile()], model, POLICY)[0]


@settings(max_examples=60, deadline=None)
@given(buyers(), st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False))
def test_more_spend_never_lowers_the_tier_score(c: dict[str, Any], extra: float) -> None:
    for model in models():
        base = _one(c, model)
        richer = _one({**c, "revenue": c["revenue"] + extra}, model)
        assert richer.tier_score >= base.tier_score
        assert richer.expected_revenue >= base.expected_revenue - 1e-4


@settings(max_examples=60, deadline=None)
@given(customers, st.floats(0.01, 1000.0, allow_nan=False, allow_infinity=False))
def test_longer_silence_never_lowers_churn_probability(c: dict[str, Any], more: float) -> None:
    later = {
        **c,
        "last_activity_age": c["last_activity_age"] + more,
        "tenure": c["tenure"] + more,
    }
    if c["orders"]:
        later["first_order_age"] = c["first_order_age"] + more
        later["last_order_age"] = c["last_order_age"] + more
    for model in models():
        assert _one(later, model).churn_probability >= _one(c, model).churn_probability


@settings(max_examples=40, deadline=None)
@given(customers, profiles)
def test_same_input_same_answer_in_range(c: dict[str, Any], profile: Profile) -> None:
    for model in models():
        first = _one(c, model, profile)
        again = PopulationModel.from_json(json.loads(json.dumps(model.to_json())))
        assert _one(c, again, profile) == first
        assert first.tier in ("high", "mid", "low")
        assert 0.0 <= first.tier_score <= 1.0
        assert 0.0 < first.churn_probability < 1.0
        assert first.expected_orders >= 0.0 and first.expected_revenue >= 0.0
        for value in (first.tier_score, first.churn_probability, first.expected_orders):
            assert round(value, 4) == value
        assert first.reasons and None not in first.segments.values()
        if not c["orders"]:
            assert first.stage == "prospect" and first.tier == "low"


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(customers, profiles), min_size=33, max_size=80))
def test_a_batch_answers_like_its_customers_alone(
    batch: list[tuple[dict[str, Any], Profile]],
) -> None:
    model = fitted()
    together = classify(rows(*(c for c, _ in batch)), [p for _, p in batch], model, POLICY)
    alone = [_one(c, model, p) for c, p in batch]
    assert together == alone
