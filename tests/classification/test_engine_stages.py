"""Worked examples: stages judged against each customer's own rhythm."""

from __future__ import annotations

import numpy as np

from app.classification.engine import classify, prior_model
from app.classification.engine.types import Profile
from tests.classification.engine_helpers import fitted_model, history, policy

POLICY = policy()


def _one(**fields: object):  # type: ignore[no-untyped-def]
    profile = fields.pop("profile", Profile())
    return classify(history(**fields), [profile], fitted_model(), POLICY)[0]


def test_weekly_buyer_silent_five_weeks_is_at_risk() -> None:
    weekly = _one(orders=52, order_days=52, first_order_age=400.0, last_order_age=35.0)
    assert weekly.stage == "at_risk"
    assert weekly.reasons[0].code == "silence_vs_cadence"
    assert weekly.reasons[0].params["usual"] <= 8


def test_yearly_buyer_silent_nine_months_is_not() -> None:
    yearly = _one(orders=4, order_days=4, first_order_age=1370.0, last_order_age=270.0)
    assert yearly.stage in ("loyal", "returning")


def test_yearly_buyer_silent_five_years_is_churned() -> None:
    gone = _one(orders=4, order_days=4, first_order_age=2900.0, last_order_age=1800.0)
    assert gone.stage == "churned"
    assert gone.segments["churn_reason"] == "unknown"
    assert "win_back_potential" in gone.segments


def test_one_recent_order_is_new() -> None:
    new = _one(orders=1, order_days=1, first_order_age=12.0, last_order_age=12.0, max_gap=np.nan)
    assert new.stage == "new"
    assert new.segments["rfm_group"] in {"new", "promising", "active"}


def test_no_orders_is_prospect_with_intent_and_ability() -> None:
    prospect = _one(
        orders=0,
        order_days=0,
        first_order_age=np.nan,
        last_order_age=np.nan,
        revenue=0.0,
        max_gap=np.nan,
        inquiries=3,
        recent_contacts=3,
        last_activity_age=4.0,
        tenure=30.0,
        profile=Profile(country="US", customer_type="business", company_size="large"),
    )
    assert prospect.stage == "prospect"
    assert prospect.tier == "low"
    assert prospect.segments["rfm_group"] == "prospects"
    assert prospect.segments["intent_ability"] == "high_intent_high_ability"
    assert prospect.strategy == "prospect_high_intent_high_ability"
    assert 0 < prospect.churn_probability < 1


def test_won_back_is_flagged_and_never_new() -> None:
    back = _one(orders=6, order_days=6, first_order_age=900.0, last_order_age=5.0, max_gap=600.0)
    assert back.segments["won_back"] is True
    assert back.stage in ("returning", "loyal")
    assert any(r.code == "won_back" for r in back.reasons)


def test_dissatisfied_churned_customer() -> None:
    unhappy = _one(
        orders=5,
        order_days=5,
        first_order_age=900.0,
        last_order_age=700.0,
        revenue=5000.0,
        refunds=2000.0,
        refund_count=2,
        feedback_count=2,
        rating_mean=2.0,
        negative_feedback=2,
    )
    assert unhappy.stage == "churned"
    assert unhappy.segments["churn_reason"] == "dissatisfied"
    assert unhappy.segments["feedback"] == "negative"


def test_geography_against_home_country() -> None:
    home = _one(profile=Profile(country="CN"))
    abroad = _one(profile=Profile(country="DE"))
    unknown = _one(profile=Profile())
    assert home.segments["geography"] == "domestic"
    assert abroad.segments["geography"] == "international"
    assert abroad.segments["region"] == "europe"
    assert "geography" not in unknown.segments


def test_loyal_split_by_frequency_and_amount() -> None:
    loyal = _one(
        orders=30,
        order_days=30,
        first_order_age=700.0,
        last_order_age=10.0,
        revenue=60000.0,
        max_gap=40.0,
    )
    assert loyal.stage == "loyal"
    assert loyal.segments["frequency_amount"] == "high_frequency_high_amount"
    assert loyal.tier == "high"


def test_priors_are_said_in_reasons() -> None:
    model = prior_model(horizon_days=180, policy=POLICY)
    result = classify(history(), [Profile()], model, POLICY)[0]
    assert result.reasons[-1].code == "priors"
    assert 0 <= result.churn_probability <= 1
