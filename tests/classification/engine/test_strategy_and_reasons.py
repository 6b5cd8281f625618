"""Strategies (first match over the catalogue) and reasons in English and Chinese."""

from __future__ import annotations

import json

import pytest

from app.classification.engine import classify, render_reason
from app.classification.engine.reasons import TEMPLATES, language
from app.classification.engine.strategy import pick_strategy
from app.classification.engine.types import EnginePolicy, Profile, Reason, StrategyRule
from tests.classification.engine.support import POLICY, PROSPECT, fitted, one

CATALOGUE = EnginePolicy(
    strategies=(
        StrategyRule("vip_unhappy", 1, 7, tier="high", segment="dissatisfied"),
        StrategyRule("vip", 2, 14, tier="high"),
        StrategyRule("abroad_new", 3, 21, stage="new", segment="international"),
        StrategyRule("anyone", 5, 60),
    )
)


def test_first_matching_rule_wins() -> None:
    unhappy = {"churn_reason": "dissatisfied", "won_back": False}
    assert pick_strategy(CATALOGUE, tier="high", stage="churned", segment_values=unhappy.values())[
        :2
    ] == ("vip_unhappy", 1)
    assert pick_strategy(CATALOGUE, tier="high", stage="loyal", segment_values=())[0] == "vip"
    abroad = {"geography": "international"}.values()
    assert pick_strategy(CATALOGUE, tier="low", stage="new", segment_values=abroad) == (
        "abroad_new",
        3,
        21,
    )
    assert pick_strategy(CATALOGUE, tier="low", stage="new", segment_values=())[0] == "anyone"


def test_fallback_without_a_matching_rule() -> None:
    empty = EnginePolicy()
    urgent = pick_strategy(empty, tier="high", stage="at_risk", segment_values=())
    calm = pick_strategy(empty, tier="low", stage="returning", segment_values=())
    assert urgent == ("high_at_risk", 1, 30)
    assert calm[0] == "low_returning" and calm[1] > urgent[1] and calm[2] == 30


def test_classify_uses_the_catalogue() -> None:
    result = classify(one(**PROSPECT), [Profile(country="DE")], fitted(), POLICY)[0]
    assert (result.strategy, result.priority, result.cadence_days) == ("prospect", 4, 30)


EXAMPLES = {
    "prospect_contacts": {"contacts": 3, "recent": 1},
    "prospect_no_activity": {},
    "first_order": {"days": 12},
    "returning": {"order_days": 3, "days": 20, "usual": 45},
    "loyal_history": {"order_days": 14, "months": 20, "usual": 30},
    "silence_vs_cadence": {"days": 96, "usual": 45},
    "single_order_silence": {"days": 120, "usual": 49},
    "won_back": {"gap": 400},
    "value_percentile": {"percent": 91},
    "dissatisfied": {"negative": 2, "refund_percent": 40},
    "churn_probability": {"percent": 62, "horizon": 180},
    "priors": {"buyers": 15},
    "model_validated": {
        "model": "BG/NBD with Platt scaling",
        "customers": 762,
        "days": 182,
        "auc": 0.89,
        "brier": 0.118,
    },
    "model_unvalidated": {"model": "BG/NBD"},
}


def test_the_worked_reason_in_both_languages() -> None:
    reason = Reason("silence_vs_cadence", {"days": 96, "usual": 45})
    assert render_reason(reason, "en") == (
        "No order for 96 days; this customer usually orders every 45 days"
    )
    assert render_reason(reason, "zh-CN") == "已 96 天未下单；该客户通常每 45 天下单一次"


@pytest.mark.parametrize("code", sorted(TEMPLATES))
def test_every_reason_renders_with_its_numbers(code: str) -> None:
    assert set(EXAMPLES) == set(TEMPLATES)
    reason = Reason(code, EXAMPLES[code])
    english, chinese = render_reason(reason, "en"), render_reason(reason, "zh-CN")
    for value in EXAMPLES[code].values():
        assert str(value) in english and str(value) in chinese
    assert "{" not in english and "{" not in chinese
    assert english != chinese


def test_languages_plurals_and_unknown_codes() -> None:
    assert language("zh") == language("zh-Hans-CN") == "zh-CN"
    assert language("de-DE") == language("") == "en"
    assert render_reason(Reason("first_order", {"days": 1}), "en") == "First order 1 day ago"
    assert render_reason(Reason("first_order", {"days": 11}), "en") == "First order 11 days ago"
    assert render_reason(Reason("no_such_code", {}), "en") == "no_such_code"
    assert render_reason(Reason("first_order", {}), "en") == "first_order"


def test_classified_reasons_are_json_scalars_and_render() -> None:
    customers = [
        one(),
        one(**PROSPECT, inquiries=2, recent_contacts=1),
        one(orders=1, order_days=1, first_order_age=400.0, last_order_age=400.0),
        one(negative_feedback=1, feedback_count=1, rating_mean=3.0),
    ]
    for h in customers:
        result = classify(h, [Profile()], fitted(), POLICY)[0]
        codes = [r.code for r in result.reasons]
        assert "churn_probability" in codes
        # Customers with an order are told which model answered and how it validated.
        assert (codes[-1] == "model_validated") == (h.orders[0] > 0)
        for reason in result.reasons:
            json.dumps(dict(reason.params))
            assert all(isinstance(v, int | float | str) for v in reason.params.values())
            assert render_reason(reason, "en") != reason.code
            assert render_reason(reason, "zh-CN") != reason.code
