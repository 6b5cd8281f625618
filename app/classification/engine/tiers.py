"""Value tiers: a customer's past and expected value, placed in the population's.

The value score is net past revenue (plus profit contribution at the policy's weight)
plus expected future revenue at its weight: contribution and potential together, as
the sources define a valuable customer. The tier score is its mid-rank in the value
distribution of the customers with an order as of T, read off a stored quantile table,
so it is monotone in value and reproducible without the population at hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.classification.engine.summary import BoolArray, Summary
from app.classification.engine.types import FloatArray, IntArray, TierRules

TIERS = ("high", "mid", "low")
HIGH, MID, LOW = range(3)
TABLE_LEVELS = 401
# Below this many customers with an order there is no distribution to speak of.
MIN_TABLE = 10


@dataclass(frozen=True, slots=True)
class ValueTable:
    """An empirical CDF: `values` strictly increasing, `ranks` their mid-ranks in [0, 1]."""

    values: tuple[float, ...]
    ranks: tuple[float, ...]
    # The same as arrays, converted once rather than on every request.
    _values: FloatArray = field(init=False, repr=False, compare=False)
    _ranks: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_values", np.asarray(self.values, dtype=np.float64))
        object.__setattr__(self, "_ranks", np.asarray(self.ranks, dtype=np.float64))

    def place(self, values: FloatArray) -> FloatArray:
        """Each value's mid-rank in the distribution, 0 below it and 1 above."""
        placed: FloatArray = np.interp(values, self._values, self._ranks, left=0.0, right=1.0)
        return placed


def value_of(s: Summary, expected_revenue: FloatArray, rules: TierRules) -> FloatArray:
    """Net past value + margin_weight * margin + future_weight * expected revenue."""
    future = max(rules.future_weight, 0.0) * np.maximum(expected_revenue, 0.0)
    result: FloatArray = s.net + rules.margin_weight * s.margin + future
    return result


def value_table(values: FloatArray) -> ValueTable | None:
    """Quantiles of `values` at TABLE_LEVELS levels with the mid-rank of each: ties
    (many customers with the same small value) sit in the middle of their block, not
    at its top."""
    finite = np.sort(values[np.isfinite(values)])
    if finite.size < MIN_TABLE:
        return None
    grid = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, TABLE_LEVELS)))
    below = np.searchsorted(finite, grid, side="left")
    upto = np.searchsorted(finite, grid, side="right")
    ranks = (below + upto) / (2.0 * finite.size)
    return ValueTable(values=tuple(float(v) for v in grid), ranks=tuple(float(r) for r in ranks))


def tier_scores(values: FloatArray, table: ValueTable | None, typical_value: float) -> FloatArray:
    """Position of each value in the population's distribution, in [0, 1]."""
    if table is None or len(table.values) < 2:
        # No population yet: a smooth monotone stand-in, 0.5 at the typical value.
        scale = max(typical_value, 1e-9)
        v = np.maximum(values, 0.0)
        stand_in: FloatArray = v / (v + scale)
        return stand_in
    return table.place(values)


def tiers(scores: FloatArray, values: FloatArray, buyer: BoolArray, rules: TierRules) -> IntArray:
    """Tier codes (index into TIERS): percentile cut-offs on the score, or amounts on the
    value; customers without an order are low value whatever their potential."""
    measure = scores if rules.method == "percentile" else values
    code = np.where(measure >= rules.high, HIGH, np.where(measure >= rules.mid, MID, LOW))
    result: IntArray = np.where(buyer, code, LOW).astype(np.int64)
    return result
