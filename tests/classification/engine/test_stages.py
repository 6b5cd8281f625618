"""Worked examples: lifecycle stages judged against each customer's own rhythm."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from app.classification.engine import classify, prior_model
from app.classification.engine.stages import STAGES, stages, usual_interval
from app.classification.engine.summary import summarise
from app.classification.engine.types import Classification, Profile, StageRules
from tests.classification.engine.support import POLICY, PROSPECT, fitted, one, rows

RULES = StageRules()


def _classify(*, profile: Profile | None = None, **fields: Any) -> Classification:
    return classify(one(**fields), [profile or Profile()], fitted(), POLICY)[0]


def _stage(*, population_interval: float = 60.0, rules: StageRules = RULES, **fields: Any) -> str:
    result = stages(summarise(one(**fields)), population_interval, rules)
    return STAGES[int(result.code[0])]


def weekly(silent_days: float) -> dict[str, Any]:
    # 52 weekly orders, the last `silent_days` ago.
    return {
        "orders": 52,
        "order_days": 52,
        "first_order_age": 51 * 7 + silent_days,
        "last_order_age": silent_days,
        "max_gap": 7.0,
        "last_gap": 7.0,
        "last_activity_age": silent_days,
        "tenure": 51 * 7 + silent_days,
    }


def yearly(silent_days: float) -> dict[str, Any]:
    # Four orders a year apart, the last `silent_days` ago.
    return {
        "orders": 4,
        "order_days": 4,
        "first_order_age": 3 * 365 + silent_days,
        "last_order_age": silent_days,
        "max_gap": 365.0,
        "last_gap": 365.0,
        "last_activity_age": silent_days,
        "tenure": 3 * 365 + silent_days,
    }


def test_a_weekly_buyer_silent_for_five_weeks_is_at_risk() -> None:
    assert _classify(**weekly(3)).stage == "loyal"
    result = _classify(**weekly(35))
    assert result.stage == "at_risk"
    first = result.reasons[0]
    assert first.code == "silence_vs_cadence"
    assert first.params["days"] == 35
    assert 7 <= float(first.params["usual"]) <= 8
    assert _classify(**weekly(100)).stage == "churned"


def test_a_yearly_buyer_silent_for_nine_months_is_fine() -> None:
    # Not lapsing; loyal only when the horizon is likely to see an order (see stages.py).
    result = _classify(**yearly(270))
    assert result.stage in ("loyal", "returning")
    assert _classify(**yearly(800)).stage in ("at_risk", "churned")
    assert _classify(**yearly(1600)).stage == "churned"


def test_the_same_silence_means_different_things() -> None:
    assert _classify(**weekly(60)).stage in ("at_risk", "churned")
    assert _classify(**yearly(60)).stage in ("loyal", "returning")


def test_one_recent_order_is_new() -> None:
    result = _classify(
        orders=1, order_days=1, first_order_age=12.0, last_order_age=12.0, max_gap=np.nan
    )
    assert result.stage == "new"
    assert result.reasons[0].code == "first_order"
    assert result.reasons[0].params == {"days": 12}
    assert result.segments["rfm_group"] in {"new", "promising", "active"}
    assert result.segments["won_back"] is False


def test_a_one_time_buyer_who_never_came_back_is_not_returning() -> None:
    once: dict[str, Any] = {"orders": 1, "order_days": 1, "max_gap": np.nan, "last_gap": np.nan}
    assert _stage(**once, first_order_age=100.0, last_order_age=100.0) == "at_risk"
    assert _stage(**once, first_order_age=300.0, last_order_age=300.0) == "churned"


def test_no_orders_is_a_prospect() -> None:
    result = _classify(**PROSPECT)
    assert result.stage == "prospect"
    assert result.tier == "low" and result.tier_score == 0.0
    assert result.segments["rfm_group"] == "prospects"
    assert "won_back" not in result.segments
    assert result.reasons[0].code == "prospect_no_activity"
    assert 0.0 < result.churn_probability < 1.0


def test_won_back_is_flagged_and_never_new() -> None:
    # Monthly for a year, silent for 400 days, then ordered again 5 days ago.
    back: dict[str, Any] = {
        "orders": 14,
        "order_days": 14,
        "first_order_age": 12 * 30 + 400 + 5.0,
        "last_order_age": 5.0,
        "max_gap": 400.0,
        "last_gap": 400.0,
    }
    result = _classify(**back)
    assert result.segments["won_back"] is True
    assert result.stage in ("returning", "loyal")
    assert any(r.code == "won_back" and r.params == {"gap": 400} for r in result.reasons)
    # The same customer with only a month's pause was never lost.
    steady = _classify(**{**back, "max_gap": 31.0, "first_order_age": 13 * 30 + 5.0})
    assert steady.segments["won_back"] is False
    # Two orders with a churn-length gap: won back, returning (never new).
    two = _classify(
        orders=2, order_days=2, first_order_age=505.0, last_order_age=5.0, max_gap=500.0
    )
    assert two.stage == "returning" and two.segments["won_back"] is True


def test_loyalty_needs_orders_and_tenure() -> None:
    assert _stage(orders=4, order_days=4, first_order_age=200.0, last_order_age=10.0) == "loyal"
    assert _stage(orders=4, order_days=4, first_order_age=120.0, last_order_age=10.0) == (
        "returning"
    )
    assert _stage(orders=9, order_days=3, first_order_age=400.0, last_order_age=10.0) == (
        "returning"
    )


def test_thresholds_follow_the_policy() -> None:
    fields: dict[str, Any] = {
        "orders": 5,
        "order_days": 5,
        "first_order_age": 200.0,
        "last_order_age": 70.0,
    }
    assert _stage(**fields) == "loyal"
    assert _stage(rules=replace(RULES, at_risk_multiple=1.0), **fields) == "at_risk"
    # Usual interval (130 + 60) / 5 = 38 days: churned past max(10, 1.5 x 38) = 57.
    quick = replace(RULES, at_risk_multiple=1.0, churn_multiple=1.5, min_churn_days=10.0)
    assert _stage(rules=quick, **fields) == "churned"


def test_usual_interval_shrinks_towards_the_population() -> None:
    h = rows(
        {"orders": 1, "order_days": 1, "first_order_age": 5.0, "last_order_age": 5.0},
        {"orders": 2, "order_days": 2, "first_order_age": 20.0, "last_order_age": 10.0},
        {"orders": 41, "order_days": 41, "first_order_age": 410.0, "last_order_age": 10.0},
    )
    interval = usual_interval(summarise(h), 50.0)
    assert interval[0] == pytest.approx(50.0)  # one-time buyer: the population's
    assert interval[1] == pytest.approx((10.0 + 50.0) / 2)  # one gap weighs like the prior
    assert interval[2] == pytest.approx((400.0 + 50.0) / 41)  # forty gaps dominate


def test_priors_are_said_and_stages_still_work() -> None:
    model = prior_model(horizon_days=90, policy=POLICY)
    result = classify(one(**weekly(35)), [Profile()], model, POLICY)[0]
    assert result.stage == "at_risk"
    assert result.reasons[-1].code == "priors"
