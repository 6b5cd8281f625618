"""Lifecycle stages, judging each customer's silence against their own buying rhythm.

A weekly buyer silent for five weeks is at risk; a yearly buyer silent for nine months
is not. The rhythm is the customer's mean gap between order days, shrunk towards the
population's typical gap the way a Gamma-Poisson posterior mean is: with few gaps
observed, the population's rhythm dominates.

With a P(no order in the horizon) validated on the newest window at hand, the names
mean what they say about the horizon: `churned` is silent past the customer's at-risk
point *and* at least CHURNED_P likely to stay silent, so of the customers called
churned at least that share buy nothing; a long-silent customer below it is `at_risk`
(the early warning); `loyal` needs the loyalty record *and* at most LOYAL_P, else the
customer is `returning`. These bounds are the stages' definitions, not fitted numbers;
the rhythm still decides who is silent (a yearly buyer quiet for nine months is not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.classification.engine.grouping import select
from app.classification.engine.summary import BoolArray, Summary
from app.classification.engine.types import FloatArray, IntArray, StageRules

# Stage codes as small integers while vectorised; STAGES[code] is the public code.
STAGES = ("prospect", "new", "returning", "loyal", "at_risk", "churned")
PROSPECT, NEW, RETURNING, LOYAL, AT_RISK, CHURNED = range(6)
# How many of the population's typical gaps the customer's own gaps are weighed against.
SHRINK_GAPS = 1.0
# P(no order in the horizon) at or above which a long-silent customer is churned, and
# at or below which a loyal record stays loyal.
CHURNED_P = 0.7
LOYAL_P = 0.25


@dataclass(frozen=True, slots=True)
class StageResult:
    code: IntArray  # index into STAGES
    interval: FloatArray  # the customer's usual days between order days
    won_back: BoolArray


def usual_interval(s: Summary, population_interval: float) -> FloatArray:
    """(t_x + k * pop) / (x + k): the customer's mean gap between order days shrunk
    towards the population's; exactly the population's for one-time buyers."""
    result: FloatArray = (s.t_x + SHRINK_GAPS * population_interval) / (s.x + SHRINK_GAPS)
    return result


def _after(rules: StageRules, interval: FloatArray) -> tuple[FloatArray, FloatArray]:
    at_risk = np.maximum(rules.min_at_risk_days, rules.at_risk_multiple * interval)
    churned = np.maximum(rules.min_churn_days, rules.churn_multiple * interval)
    return at_risk, np.maximum(churned, at_risk)


def won_back(s: Summary, population_interval: float, rules: StageRules) -> BoolArray:
    """Had churned and bought again: some gap between order days exceeded the churn
    threshold of the rhythm the customer had apart from that gap."""
    other_gaps = np.maximum(s.x - 1.0, 0.0)
    rhythm = (np.maximum(s.t_x - s.max_gap, 0.0) + SHRINK_GAPS * population_interval) / (
        other_gaps + SHRINK_GAPS
    )
    _, churn_after = _after(rules, rhythm)
    result: BoolArray = (s.x > 0) & (s.max_gap > churn_after)
    return result


def stages(
    s: Summary,
    population_interval: float,
    rules: StageRules,
    churn: FloatArray | None = None,
) -> StageResult:
    """Stage codes; with `churn` (calibrated P(no order in the horizon)) the probability
    bounds above apply, without it the silence thresholds alone decide."""
    interval = usual_interval(s, population_interval)
    at_risk_after, churn_after = _after(rules, interval)
    back = won_back(s, population_interval, rules)
    one_day = s.order_days <= 1
    tenure = s.T  # days since the first order
    loyal = (s.order_days >= rules.loyal_min_orders) & (tenure >= rules.loyal_min_tenure_days)
    if churn is not None:
        is_new = one_day & (s.recency <= rules.new_max_days)
        # A one-time buyer past the "new" window has not come back: silent too long.
        silent = (s.recency > at_risk_after) | (one_day & ~is_new)
        code = select(
            [
                ~s.buyer,
                silent & (churn >= CHURNED_P),
                is_new,
                silent,
                loyal & (churn <= LOYAL_P),
            ],
            [PROSPECT, CHURNED, NEW, AT_RISK, LOYAL],
            default=RETURNING,
        )
        return StageResult(code=code, interval=interval, won_back=back)
    code = select(
        [
            ~s.buyer,
            s.recency > churn_after,
            s.recency > at_risk_after,
            one_day & (s.recency <= rules.new_max_days),
            # A one-time buyer past the "new" window has not come back: not "returning".
            one_day,
            loyal,
        ],
        [PROSPECT, CHURNED, AT_RISK, NEW, AT_RISK, LOYAL],
        default=RETURNING,
    )
    return StageResult(code=code, interval=interval, won_back=back)
