"""Sub-segments and the other dimensions of each customer, as coded columns.

Every segment is computed for all customers at once as a column of small-integer codes
into a vocabulary (None in it: the customer has no such segment); classify groups the
rows and turns each distinct row into a JSON-ready dict. Keys without a value are left
out rather than set to null.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.classification.engine.grouping import codes_of, select
from app.classification.engine.regions import region_of
from app.classification.engine.stages import AT_RISK, CHURNED, LOYAL, NEW, PROSPECT
from app.classification.engine.summary import BoolArray, Summary
from app.classification.engine.tiers import LOW
from app.classification.engine.types import EnginePolicy, FloatArray, IntArray, Profile

# Shopify's RFM groups. Rows: recency score R = 1..5; columns: the combined frequency
# and monetary score FM = 1..5.
RFM_GRID = (
    ("dormant", "dormant", "at_risk", "at_risk", "previously_loyal"),
    ("almost_lost", "almost_lost", "at_risk", "previously_loyal", "previously_loyal"),
    ("needs_attention", "needs_attention", "needs_attention", "loyal", "loyal"),
    ("promising", "promising", "active", "loyal", "champions"),
    ("new", "promising", "active", "champions", "champions"),
)
_RFM_FLAT = np.array([g for row in RFM_GRID for g in row] + ["prospects"], dtype=object)
_CAPABLE_SIZES = frozenset({"medium", "large", "enterprise"})
# A churn with these signs is put down to dissatisfaction.
DISSATISFIED_RATING = 5.0
DISSATISFIED_REFUND_SHARE = 0.2
POSITIVE_RATING = 7.0


@dataclass(frozen=True, slots=True)
class RfmCuts:
    """Quintile edges of the population's days since the last order, order days and
    net revenue (customers with an order, as of T); empty without a population."""

    recency: tuple[float, ...] = ()
    frequency: tuple[float, ...] = ()
    monetary: tuple[float, ...] = ()


def quintile_cuts(values: FloatArray) -> tuple[float, ...]:
    if values.size == 0:
        return ()
    return tuple(float(v) for v in np.quantile(values, (0.2, 0.4, 0.6, 0.8)))


def _score(values: FloatArray, cuts: tuple[float, ...], *, lower_is_better: bool) -> IntArray:
    """Quintile score 1..5 against the stored cut points (3 without them). A value on a
    cut point gets the better score of the two, so ties (everyone with one order day)
    are not split arbitrarily."""
    if not cuts:
        return np.full(values.shape, 3, dtype=np.int64)
    below = np.searchsorted(np.asarray(cuts), values, side="left")
    result: IntArray = (5 - below if lower_is_better else below + 1).astype(np.int64)
    return result


def rfm_codes(s: Summary, cuts: RfmCuts) -> IntArray:
    """Index into _RFM_FLAT for every customer: the RFM grid cell, or prospects."""
    r = _score(s.recency, cuts.recency, lower_is_better=True)
    f = _score(s.order_days, cuts.frequency, lower_is_better=False)
    m = _score(s.net, cuts.monetary, lower_is_better=False)
    fm = (f + m + 1) // 2  # the mean of F and M, halves rounded up
    code: IntArray = np.where(s.buyer, (r - 1) * 5 + (fm - 1), len(_RFM_FLAT) - 1)
    return code


@dataclass(frozen=True, slots=True)
class Column:
    """One segment key: `vocabulary[codes[i]]` is row i's value (None: absent)."""

    key: str
    codes: IntArray
    vocabulary: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Population:
    """What segments compare a customer with."""

    cuts: RfmCuts
    median_order_days: float  # among repeat buyers
    median_order_value: float  # gross amount per order among buyers


def _coded(key: str, values: Sequence[object], clean: Callable[[object], object]) -> Column:
    codes, vocabulary = codes_of(values)
    return Column(key, codes, tuple(clean(v) for v in vocabulary))


def _text(value: object) -> object:
    return value or None


def _country(value: object) -> object:
    return str(value).strip().upper() or None if value else None


def _profile_columns(profiles: Sequence[Profile], policy: EnginePolicy) -> list[Column]:
    country = _coded("country", [p.country for p in profiles], _country)
    home = _country(policy.home_country)
    geography = tuple(
        None if c is None or home is None else "domestic" if c == home else "international"
        for c in country.vocabulary
    )
    region = tuple(None if c is None else region_of(str(c)) for c in country.vocabulary)
    return [
        Column("geography", country.codes, geography),
        country,
        Column("region", country.codes, region),
        _coded("customer_type", [p.customer_type for p in profiles], _text),
        _coded("role", [p.role for p in profiles], _text),
        _coded("industry", [p.industry for p in profiles], _text),
        _coded("company_size", [p.company_size for p in profiles], _text),
    ]


def _lookup(column: Column, test: Callable[[object], bool]) -> BoolArray:
    """test(value) for every row, evaluated once per vocabulary entry."""
    table = np.asarray([test(v) for v in column.vocabulary], dtype=bool)
    result: BoolArray = table[column.codes]
    return result


def _feedback(s: Summary) -> IntArray:
    """0 none, 1 positive, 2 negative, 3 mixed: from the count of feedback rated 0-4 and
    the mean rating."""
    rating = s.rating
    none = s.feedback <= 0
    positive = (s.negative <= 0) & ~(rating < POSITIVE_RATING)
    negative = (s.negative >= s.feedback) | (rating < DISSATISFIED_RATING)
    return select([none, positive, negative], [0, 1, 2], default=3)


def dissatisfied(s: Summary) -> BoolArray:
    """Negative feedback, a low mean rating or a large share of spend refunded."""
    share = np.where(s.revenue > 0, s.refunds / np.maximum(s.revenue, 1e-300), 0.0)
    result: BoolArray = (
        (s.negative > 0) | (s.rating < DISSATISFIED_RATING) | (share > DISSATISFIED_REFUND_SHARE)
    )
    return result


def _two_by_two(high_a: BoolArray, high_b: BoolArray) -> IntArray:
    result: IntArray = np.where(high_a, 0, 2) + np.where(high_b, 0, 1)
    return result


def segment_columns(
    s: Summary,
    profiles: Sequence[Profile],
    policy: EnginePolicy,
    population: Population,
    *,
    stage: IntArray,
    tier: IntArray,
    won_back: BoolArray,
    p_alive: FloatArray,
) -> list[Column]:
    """Every segment key as a coded column."""
    profile = _profile_columns(profiles, policy)
    by_key = {c.key: c for c in profile}
    columns = [
        Column("rfm_group", rfm_codes(s, population.cuts), tuple(_RFM_FLAT.tolist())),
        *profile,
        Column("feedback", _feedback(s), ("none", "positive", "negative", "mixed")),
        Column("won_back", np.where(s.buyer, won_back.astype(np.int64), 2), (False, True, None)),
    ]

    # Prospects: purchase intent (recent contacts, inquiries) x ability (size, type, role).
    size, role, kind = by_key["company_size"], by_key["role"], by_key["customer_type"]
    capable = (
        _lookup(size, lambda v: v in _CAPABLE_SIZES)
        | _lookup(role, lambda v: v == "distributor")
        | (_lookup(kind, lambda v: v == "business") & _lookup(size, lambda v: v is None))
    )
    intent = (s.recent_contacts >= 2) | ((s.inquiries >= 1) & (s.recent_contacts >= 1))
    columns.append(
        Column(
            "intent_ability",
            np.where(stage == PROSPECT, _two_by_two(intent, capable), 4),
            (
                "high_intent_high_ability",
                "high_intent_low_ability",
                "low_intent_high_ability",
                "low_intent_low_ability",
                None,
            ),
        )
    )

    # Loyal customers: frequency x amount against the population's medians.
    frequent = s.order_days >= population.median_order_days
    large = s.mean_spend >= population.median_order_value
    columns.append(
        Column(
            "frequency_amount",
            np.where(stage == LOYAL, _two_by_two(frequent, large), 4),
            (
                "high_frequency_high_amount",
                "high_frequency_low_amount",
                "low_frequency_high_amount",
                "low_frequency_low_amount",
                None,
            ),
        )
    )

    # Lapsing and churned customers: why, and whether winning them back is worth a try.
    lapsing = (stage == AT_RISK) | (stage == CHURNED)
    reason = np.where(lapsing, np.where(dissatisfied(s), 0, 1), 2)
    columns.append(Column("churn_reason", reason, ("dissatisfied", "unknown", None)))
    valuable = tier != LOW
    potential = select(
        [valuable & (p_alive >= 0.2), valuable | (p_alive >= 0.3)], [0, 1], default=2
    )
    columns.append(
        Column(
            "win_back_potential",
            np.where(stage == CHURNED, potential, 3),
            ("high", "medium", "low", None),
        )
    )

    # Distributors: the partner view of the same path.
    partner = select([(stage == PROSPECT) | (stage == NEW), stage == LOYAL], [0, 2], default=1)
    distributor = _lookup(role, lambda v: v == "distributor")
    columns.append(
        Column(
            "partner_stage",
            np.where(distributor, partner, 3),
            ("development", "maintenance", "deepening", None),
        )
    )
    return columns
