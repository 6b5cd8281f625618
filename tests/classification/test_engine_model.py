"""The population model: recovery from simulated data, calibration, fallbacks, storage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.classification.engine import PopulationModel, classify, fit_model, render_reason
from app.classification.engine.btyd import fit_bgnbd
from app.classification.engine.features import summarise
from app.classification.engine.simulate import simulate
from app.classification.engine.types import Outcomes, Profile, Reason
from tests.classification.engine_helpers import fitted_model, history, policy

POLICY = policy()


def test_bgnbd_recovers_simulated_parameters() -> None:
    # Slow buyers, so that two purchases rarely share a day and the day grid loses little.
    sim = simulate(30_000, seed=11, r=0.8, alpha=80.0, a=0.7, b=3.0)
    s = summarise(sim.histories(900.0))
    buyers = s.buyer > 0
    fit = fit_bgnbd(s.x[buyers], s.t_x[buyers], s.T[buyers])
    assert fit is not None
    assert fit.r == pytest.approx(0.8, rel=0.25)
    assert fit.alpha == pytest.approx(80.0, rel=0.3)
    assert fit.a == pytest.approx(0.7, rel=0.35)
    assert fit.b == pytest.approx(3.0, rel=0.4)


def test_churn_probability_is_calibrated_on_held_out_future() -> None:
    sim = simulate(20_000, seed=5)
    horizon, cutoff = 180.0, 800.0
    model = fit_model(
        sim.histories(cutoff - horizon),
        sim.outcomes(cutoff - horizon, cutoff),
        sim.histories(cutoff),
        horizon_days=horizon,
        policy=POLICY,
    )
    current = sim.histories(cutoff)
    results = classify(current, [Profile()] * len(current), model, POLICY)
    predicted = np.array([r.churn_probability for r in results])
    observed = (sim.outcomes(cutoff, cutoff + horizon).orders == 0).astype(float)
    bins = np.minimum((predicted * 10).astype(int), 9)
    for b in range(10):
        members = bins == b
        if members.sum() >= 200:
            assert abs(predicted[members].mean() - observed[members].mean()) < 0.05
    expected = np.array([r.expected_orders for r in results]).sum()
    actual = sim.outcomes(cutoff, cutoff + horizon).orders.sum()
    assert expected == pytest.approx(actual, rel=0.15)


def test_tiny_empty_and_degenerate_populations_fall_back_to_priors() -> None:
    empty = history(orders=0)
    for size in (0, 1, 15):
        sim = simulate(size, seed=1) if size else None
        current = sim.histories(500.0) if sim else _empty()
        outcomes = (
            sim.outcomes(320.0, 500.0)
            if sim
            else Outcomes(orders=np.zeros(0, dtype=np.int64), revenue=np.zeros(0))
        )
        train = sim.histories(320.0) if sim else _empty()
        model = fit_model(train, outcomes, current, horizon_days=180.0, policy=POLICY)
        assert model.source == "prior"
        result = classify(empty, [Profile()], model, POLICY)[0]
        assert 0 <= result.churn_probability <= 1
    nobody_repeats = simulate(500, seed=2, a=50.0, b=0.1)
    model = fit_model(
        nobody_repeats.histories(320.0),
        nobody_repeats.outcomes(320.0, 500.0),
        nobody_repeats.histories(500.0),
        horizon_days=180.0,
        policy=POLICY,
    )
    assert model.source in ("prior", "fitted")


def _empty():  # type: ignore[no-untyped-def]
    return simulate(1, seed=0).histories(-1.0)


def test_model_round_trips_through_json() -> None:
    model = fitted_model()
    again = PopulationModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again == model


def test_reasons_render_in_both_languages() -> None:
    reason = Reason("silence_vs_cadence", {"days": 96, "usual": 45})
    assert render_reason(reason, "en") == (
        "No order for 96 days; this customer usually orders every 45 days"
    )
    assert render_reason(reason, "zh-CN") == "已 96 天未下单；该客户通常每 45 天下单一次"


customers = st.fixed_dictionaries(
    {
        "order_days": st.integers(1, 60),
        "first_order_age": st.floats(1.0, 2000.0),
        "recency_share": st.floats(0.0, 1.0),
        "revenue": st.floats(1.0, 1e6),
        "refunds": st.floats(0.0, 0.5),
        "negative_feedback": st.integers(0, 3),
        "recent_contacts": st.integers(0, 5),
    }
)


def _history(c: dict[str, float], **changes: float):  # type: ignore[no-untyped-def]
    fields = {
        "orders": int(c["order_days"]),
        "order_days": int(c["order_days"]),
        "first_order_age": c["first_order_age"],
        "last_order_age": c["first_order_age"] * c["recency_share"],
        "revenue": c["revenue"],
        "refunds": c["revenue"] * c["refunds"],
        "negative_feedback": int(c["negative_feedback"]),
        "feedback_count": int(c["negative_feedback"]),
        "recent_contacts": int(c["recent_contacts"]),
        "max_gap": np.nan if c["order_days"] < 2 else 30.0,
        "last_activity_age": c["first_order_age"] * c["recency_share"],
        "tenure": c["first_order_age"],
    }
    fields.update(changes)
    return history(**fields)


@settings(max_examples=60, deadline=None)
@given(customers, st.floats(1.0, 1e5))
def test_more_spend_never_lowers_the_tier_score(c: dict[str, float], extra: float) -> None:
    model = fitted_model()
    base = classify(_history(c), [Profile()], model, POLICY)[0]
    richer = classify(_history(c, revenue=c["revenue"] + extra), [Profile()], model, POLICY)[0]
    assert richer.tier_score >= base.tier_score


@settings(max_examples=60, deadline=None)
@given(customers, st.floats(1.0, 500.0))
def test_longer_silence_never_lowers_churn_probability(c: dict[str, float], more: float) -> None:
    model = fitted_model()
    recency = c["first_order_age"] * c["recency_share"]
    longer = recency + more
    base = classify(_history(c), [Profile()], model, POLICY)[0]
    quiet = classify(
        _history(
            c,
            first_order_age=c["first_order_age"] + more,
            last_order_age=longer,
            last_activity_age=longer,
            tenure=c["first_order_age"] + more,
        ),
        [Profile()],
        model,
        POLICY,
    )[0]
    assert quiet.churn_probability >= base.churn_probability


@settings(max_examples=30, deadline=None)
@given(customers)
def test_same_input_same_answer(c: dict[str, float]) -> None:
    model = fitted_model()
    first = classify(_history(c), [Profile(country="DE")], model, POLICY)
    second = classify(_history(c), [Profile(country="DE")], model, POLICY)
    assert first == second
    result = first[0]
    assert 0.0 <= result.tier_score <= 1.0
    assert 0.0 <= result.churn_probability <= 1.0
    assert result.expected_orders >= 0 and result.expected_revenue >= 0
