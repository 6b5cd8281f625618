"""Plain data the classification engine works on.

The engine sees no database and no HTTP: the service reads customers' histories as
parallel NumPy arrays (one row per customer, as of a cut-off time T), hands them in
with the policy, and gets plain results back. A single customer is a batch of one, so
single and bulk classification share one code path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

TierCode = Literal["high", "mid", "low"]
StageCode = Literal["prospect", "new", "returning", "loyal", "at_risk", "churned"]


@dataclass(frozen=True, slots=True)
class Histories:
    """Customers' event histories summarised as of a cut-off T, one row per customer.

    Ages are float days before T. NaN marks "no such event". Money is in the policy's
    base currency, as floats (the service converts back to quantised Decimal).
    """

    orders: IntArray  # order events at or before T
    order_days: IntArray  # distinct UTC days with an order; BTYD frequency = order_days - 1
    first_order_age: FloatArray  # days from the first order to T (BTYD "T"); NaN if none
    last_order_age: FloatArray  # days from the last order to T (days since); NaN if none
    revenue: FloatArray  # gross order amount
    refunds: FloatArray  # refunded amount
    refund_count: IntArray
    margin: FloatArray  # summed margin of the orders that carried one; NaN if none did
    max_gap: FloatArray  # longest gap in days between consecutive order days; NaN if < 2
    last_gap: FloatArray  # gap in days between the last two order days; NaN if < 2
    inquiries: IntArray
    interactions: IntArray
    recent_contacts: IntArray  # inquiries + interactions in the 90 days before T
    feedback_count: IntArray
    rating_mean: FloatArray  # mean feedback rating on the 0-10 scale; NaN if none
    negative_feedback: IntArray  # feedback rated 0-4
    last_activity_age: FloatArray  # days since any event; NaN if none
    tenure: FloatArray  # days since the customer was first seen (created or first event)

    def __len__(self) -> int:
        return int(self.orders.shape[0])


# The integer columns of Histories; every other column is a float.
INT_FIELDS = frozenset(
    {
        "orders",
        "order_days",
        "refund_count",
        "inquiries",
        "interactions",
        "recent_contacts",
        "feedback_count",
        "negative_feedback",
    }
)


@dataclass(frozen=True, slots=True)
class Outcomes:
    """What each customer of a training cohort did in the horizon after its cut-off."""

    orders: IntArray  # orders placed in (T, T + horizon]
    revenue: FloatArray  # their net value in the base currency


@dataclass(frozen=True, slots=True)
class Profile:
    """The non-event facts about a customer that feed segments."""

    country: str | None = None
    customer_type: str | None = None  # individual | business
    role: str | None = None  # end_customer | distributor
    industry: str | None = None
    company_size: str | None = None  # micro | small | medium | large | enterprise


@dataclass(frozen=True, slots=True)
class TierRules:
    """How the value score becomes a tier.

    `percentile`: `high`/`mid` are score cut-offs in [0, 1] (the score is the customer's
    value percentile in the population as of T). `absolute`: they are amounts of value
    in the base currency.
    """

    method: Literal["percentile", "absolute"] = "percentile"
    high: float = 0.8
    mid: float = 0.5
    margin_weight: float = 0.5  # how much profit contribution counts next to revenue
    future_weight: float = 10.0  # how much expected future value counts next to the past


@dataclass(frozen=True, slots=True)
class StageRules:
    """Thresholds of the lifecycle stages, in multiples of a customer's own cadence."""

    at_risk_multiple: float = 2.0  # silent for more than this many usual intervals
    churn_multiple: float = 4.0
    min_at_risk_days: float = 30.0  # never at risk sooner than this
    min_churn_days: float = 90.0  # never churned sooner than this
    new_max_days: float = 90.0  # a one-order customer stays "new" at most this long
    loyal_min_orders: int = 4  # distinct order days
    loyal_min_tenure_days: float = 180.0


@dataclass(frozen=True, slots=True)
class StrategyRule:
    """One row of the strategy catalogue's matching table; the first match wins.

    `None` matches anything. `segment` names a sub-segment value (e.g.
    "dissatisfied", "high_intent_high_ability") that must appear in the result's
    segments for the rule to match.
    """

    code: str
    priority: int
    cadence_days: int
    tier: str | None = None
    stage: str | None = None
    segment: str | None = None


@dataclass(frozen=True, slots=True)
class EnginePolicy:
    home_country: str | None = None
    tier: TierRules = TierRules()
    stage: StageRules = StageRules()
    strategies: tuple[StrategyRule, ...] = ()
    min_population: int = 200  # fewer trainable customers than this: use priors


@dataclass(frozen=True, slots=True)
class Reason:
    """A reason as a code and its numbers; rendered into a language by reasons.render."""

    code: str
    params: Mapping[str, float | int | str]


@dataclass(frozen=True, slots=True)
class Classification:
    tier: TierCode
    tier_score: float
    stage: StageCode
    strategy: str
    priority: int
    cadence_days: int
    segments: Mapping[str, object]  # JSON-ready
    churn_probability: float
    expected_orders: float
    expected_revenue: float
    reasons: tuple[Reason, ...]
