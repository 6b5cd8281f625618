"""Sub-segments and dimensions: the RFM grid, geography, intent x ability, frequency x
amount, churn reasons, feedback and the partner view."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from app.classification.engine import classify
from app.classification.engine.segments import RFM_GRID, RfmCuts, rfm_codes
from app.classification.engine.summary import summarise
from app.classification.engine.types import Classification, EnginePolicy, Profile
from tests.classification.engine.support import POLICY, PROSPECT, fitted, one, rows

SHOPIFY = {
    "champions",
    "loyal",
    "active",
    "promising",
    "new",
    "needs_attention",
    "at_risk",
    "previously_loyal",
    "almost_lost",
    "dormant",
}


def _classify(
    profile: Profile | None = None, *, policy: EnginePolicy = POLICY, **fields: Any
) -> Classification:
    return classify(one(**fields), [profile or Profile()], fitted(), policy)[0]


def test_rfm_grid_covers_every_cell_with_shopify_groups() -> None:
    assert RFM_GRID[4] == ("new", "promising", "active", "champions", "champions")
    assert RFM_GRID[3] == ("promising", "promising", "active", "loyal", "champions")
    assert RFM_GRID[2] == ("needs_attention",) * 3 + ("loyal", "loyal")
    assert RFM_GRID[1] == (
        "almost_lost",
        "almost_lost",
        "at_risk",
        "previously_loyal",
        "previously_loyal",
    )
    assert RFM_GRID[0] == ("dormant", "dormant", "at_risk", "at_risk", "previously_loyal")
    assert {g for row in RFM_GRID for g in row} == SHOPIFY


def test_rfm_scores_come_from_the_stored_quintiles() -> None:
    cuts = RfmCuts(recency=(10, 20, 30, 40), frequency=(1, 2, 3, 4), monetary=(10, 20, 30, 40))
    grid = {}
    for r, recency in zip(range(5, 0, -1), (5.0, 15.0, 25.0, 35.0, 45.0), strict=True):
        for fm, (days, net) in enumerate(
            ((1, 5.0), (2, 15.0), (3, 25.0), (4, 35.0), (5, 45.0)), start=1
        ):
            h = one(
                orders=days,
                order_days=days,
                first_order_age=recency + 100,
                last_order_age=recency,
                revenue=net,
            )
            code = int(rfm_codes(summarise(h), cuts)[0])
            grid[(r, fm)] = code
    assert sorted(grid.values()) == list(range(25))
    assert grid[(5, 5)] == 24 and grid[(1, 1)] == 0
    prospect = rfm_codes(summarise(one(**PROSPECT)), cuts)
    assert int(prospect[0]) == 25


def test_one_order_customers_are_not_split_by_ties() -> None:
    h = rows(*({"orders": 1, "order_days": 1, "revenue": 100.0} for _ in range(3)))
    cuts = RfmCuts(recency=(1, 2, 3, 4), frequency=(1.0, 1.0, 2.0, 5.0), monetary=(1, 2, 3, 4))
    codes = rfm_codes(summarise(h), cuts)
    assert len(set(codes.tolist())) == 1


def test_geography_against_the_home_country() -> None:
    assert _classify(Profile(country="CN")).segments["geography"] == "domestic"
    abroad = _classify(Profile(country="de")).segments
    assert abroad["geography"] == "international"
    assert abroad["country"] == "DE" and abroad["region"] == "europe"
    assert _classify(Profile(country="US")).segments["region"] == "north_america"
    assert _classify(Profile(country="JP")).segments["region"] == "asia"
    unknown = _classify(Profile()).segments
    assert "geography" not in unknown and "region" not in unknown and "country" not in unknown
    no_home = _classify(Profile(country="DE"), policy=replace(POLICY, home_country=None))
    assert "geography" not in no_home.segments and no_home.segments["region"] == "europe"
    nowhere = _classify(Profile(country="ZZ")).segments
    assert nowhere["geography"] == "international" and "region" not in nowhere


def test_keys_without_a_value_are_absent_and_segments_are_json() -> None:
    profile = Profile(country="BR", customer_type="business", industry="retail")
    result = _classify(profile)
    assert None not in result.segments.values()
    assert {"rfm_group", "geography", "region", "feedback", "won_back"} <= set(result.segments)
    assert result.segments["customer_type"] == "business"
    assert result.segments["industry"] == "retail"
    assert "role" not in result.segments and "company_size" not in result.segments
    assert all(isinstance(v, str | bool) for v in result.segments.values())
    json.dumps(dict(result.segments))


@pytest.mark.parametrize(
    ("contacts", "inquiries", "profile", "cell"),
    [
        (3, 1, Profile(company_size="large"), "high_intent_high_ability"),
        (2, 0, Profile(customer_type="individual"), "high_intent_low_ability"),
        (0, 0, Profile(role="distributor"), "low_intent_high_ability"),
        (1, 0, Profile(customer_type="business", company_size="micro"), "low_intent_low_ability"),
        (1, 1, Profile(customer_type="business"), "high_intent_high_ability"),
    ],
)
def test_prospects_by_intent_and_ability(
    contacts: int, inquiries: int, profile: Profile, cell: str
) -> None:
    result = _classify(profile, **{**PROSPECT, "recent_contacts": contacts, "inquiries": inquiries})
    assert result.stage == "prospect"
    assert result.segments["intent_ability"] == cell
    if cell == "high_intent_high_ability":
        assert result.strategy == "prospect_hot" and result.priority == 1
    if contacts or inquiries:
        assert result.reasons[0].code == "prospect_contacts"


def test_loyal_customers_by_frequency_and_amount() -> None:
    base: dict[str, Any] = {"first_order_age": 700.0, "last_order_age": 10.0, "max_gap": 40.0}
    big = _classify(**base, orders=30, order_days=30, revenue=60_000.0)
    assert big.stage == "loyal"
    assert big.segments["frequency_amount"] == "high_frequency_high_amount"
    assert big.tier == "high"
    few_small = _classify(**base, orders=3, order_days=3, revenue=30.0, last_gap=100.0)
    assert few_small.stage != "loyal" and "frequency_amount" not in few_small.segments
    rare_small = _classify(
        **{**base, "first_order_age": 1000.0, "last_order_age": 100.0},
        orders=4,
        order_days=2,
        revenue=60.0,
    )
    assert "frequency_amount" not in rare_small.segments  # two order days: not loyal


def test_churned_customers_by_reason_and_potential() -> None:
    gone: dict[str, Any] = {
        "orders": 5,
        "order_days": 5,
        "first_order_age": 900.0,
        "last_order_age": 700.0,
    }
    unhappy = _classify(
        **gone,
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
    assert unhappy.segments["win_back_potential"] in {"high", "medium", "low"}
    dissatisfied = [r for r in unhappy.reasons if r.code == "dissatisfied"]
    assert dissatisfied and dissatisfied[0].params == {"negative": 2, "refund_percent": 40}
    quiet = _classify(**gone, revenue=100.0)
    assert quiet.segments["churn_reason"] == "unknown"
    assert quiet.segments["win_back_potential"] == "low"
    assert "churn_reason" not in _classify().segments


def test_feedback_behaviour() -> None:
    def feedback(count: int, negative: int, rating: float) -> object:
        return _classify(
            feedback_count=count, negative_feedback=negative, rating_mean=rating
        ).segments["feedback"]

    assert feedback(0, 0, np.nan) == "none"
    assert feedback(3, 0, 9.0) == "positive"
    assert feedback(2, 2, 2.0) == "negative"
    assert feedback(4, 1, 6.5) == "mixed"


def test_partner_stage_for_distributors() -> None:
    distributor = Profile(role="distributor", customer_type="business")
    assert _classify(distributor, **PROSPECT).segments["partner_stage"] == "development"
    loyal: dict[str, Any] = {
        "orders": 30,
        "order_days": 30,
        "first_order_age": 700.0,
        "last_order_age": 10.0,
    }
    assert _classify(distributor, **loyal).segments["partner_stage"] == "deepening"
    assert _classify(distributor).segments["partner_stage"] == "maintenance"
    assert "partner_stage" not in _classify(Profile(role="end_customer")).segments
