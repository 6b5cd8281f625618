"""The reasons behind each classification: what the stage rests on, the value
percentile, signs of dissatisfaction, the churn probability and whether priors were used.

Built column-wise: reasons are numbered with NumPy, each distinct reason (and each
distinct tuple of reasons) is made once and shared between the rows that have it.
Reasons are immutable, so sharing is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.classification.engine.grouping import group, spread
from app.classification.engine.segments import dissatisfied
from app.classification.engine.stages import (
    AT_RISK,
    CHURNED,
    LOYAL,
    NEW,
    PROSPECT,
    RETURNING,
    StageResult,
)
from app.classification.engine.summary import BoolArray, Summary, finite
from app.classification.engine.types import FloatArray, IntArray, Reason

DAYS_PER_MONTH = 30.44
NONE = -1  # "no reason of this kind" in an id column


@dataclass(frozen=True, slots=True)
class Facts:
    """What the reasons quote, for every row."""

    stage: StageResult
    churn: FloatArray
    scores: FloatArray
    horizon_days: float
    priors_buyers: int | None  # customers with orders, when priors were used
    model: Reason | None = None  # which model answered for customers with an order


def whole(values: FloatArray) -> FloatArray:
    result: FloatArray = np.rint(finite(values))
    return result


def displayed(values: FloatArray) -> FloatArray:
    """Whole numbers from 10 up, one decimal below (a 3.5-day rhythm stays 3.5)."""
    values = finite(values)
    result: FloatArray = np.where(values >= 10, np.rint(values), np.round(values, 1))
    return result


def _scalar(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


class ReasonTable:
    """Distinct reasons, numbered; rows refer to them by id."""

    def __init__(self) -> None:
        self.reasons: list[Reason] = []

    def add(self, code: str, mask: BoolArray, params: dict[str, FloatArray], ids: IntArray) -> None:
        """A `code` reason for every row of `mask`, with already rounded `params`."""
        rows = np.flatnonzero(mask)
        if not rows.size:
            return
        columns = [np.rint(values[rows] * 10).astype(np.int64) for values in params.values()]
        group_ids, first = group(columns, rows.size)
        offset = len(self.reasons)
        for row in rows[first].tolist():
            self.reasons.append(Reason(code, {name: _scalar(v[row]) for name, v in params.items()}))
        ids[rows] = offset + group_ids

    def same(self, reason: Reason, mask: BoolArray, ids: IntArray) -> None:
        """One shared `reason` for every row of `mask`."""
        if not bool(mask.any()):
            return
        self.reasons.append(reason)
        ids[mask] = len(self.reasons) - 1


def _stage_reasons(s: Summary, stage: StageResult, table: ReasonTable) -> IntArray:
    code = stage.code
    ids = np.full(code.size, NONE, dtype=np.int64)
    # Recent contacts are a subset of all; the larger is right if the two disagree.
    contacts = np.maximum(s.inquiries + s.interactions, s.recent_contacts)
    prospect = code == PROSPECT
    lapsing = (code == AT_RISK) | (code == CHURNED)
    days, usual = whole(s.recency), displayed(stage.interval)
    order_days = whole(s.order_days)
    table.add(
        "prospect_contacts",
        prospect & (contacts > 0),
        {"contacts": whole(contacts), "recent": whole(s.recent_contacts)},
        ids,
    )
    table.add("prospect_no_activity", prospect & (contacts <= 0), {}, ids)
    table.add("first_order", code == NEW, {"days": days}, ids)
    table.add(
        "returning",
        code == RETURNING,
        {"order_days": order_days, "days": days, "usual": usual},
        ids,
    )
    table.add(
        "loyal_history",
        code == LOYAL,
        {"order_days": order_days, "months": whole(s.T / DAYS_PER_MONTH), "usual": usual},
        ids,
    )
    silence = {"days": days, "usual": usual}
    table.add("silence_vs_cadence", lapsing & (s.x > 0), silence, ids)
    table.add("single_order_silence", lapsing & (s.x <= 0), silence, ids)
    return ids


def explain(s: Summary, facts: Facts) -> list[tuple[Reason, ...]]:
    """The reasons of every row: the stage's, won back, value percentile,
    dissatisfaction, churn probability, the model that answered, and priors (if used)
    last."""
    n = s.x.size
    table = ReasonTable()
    columns = [_stage_reasons(s, facts.stage, table)]

    won_back = np.full(n, NONE, dtype=np.int64)
    table.add("won_back", facts.stage.won_back & s.buyer, {"gap": whole(s.max_gap)}, won_back)
    columns.append(won_back)

    value = np.full(n, NONE, dtype=np.int64)
    table.add("value_percentile", s.buyer, {"percent": np.floor(100.0 * facts.scores)}, value)
    columns.append(value)

    unhappy = np.full(n, NONE, dtype=np.int64)
    share = np.where(s.revenue > 0, s.refunds / np.maximum(s.revenue, 1e-300), 0.0)
    table.add(
        "dissatisfied",
        dissatisfied(s) & s.buyer,
        {"negative": whole(s.negative), "refund_percent": whole(100.0 * share)},
        unhappy,
    )
    columns.append(unhappy)

    churn = np.full(n, NONE, dtype=np.int64)
    horizon = np.full(n, float(round(facts.horizon_days)))
    table.add(
        "churn_probability",
        np.ones(n, dtype=bool),
        {"percent": whole(100.0 * facts.churn), "horizon": horizon},
        churn,
    )
    columns.append(churn)
    if facts.model is not None:
        answered = np.full(n, NONE, dtype=np.int64)
        table.same(facts.model, s.buyer, answered)
        columns.append(answered)
    if facts.priors_buyers is not None:
        priors = np.full(n, NONE, dtype=np.int64)
        buyers = np.full(n, float(facts.priors_buyers))
        table.add("priors", np.ones(n, dtype=bool), {"buyers": buyers}, priors)
        columns.append(priors)

    # Each distinct combination of reason ids becomes one shared tuple.
    ids, first = group(columns, n)
    matrix = np.stack(columns, axis=1)[first]
    reasons = table.reasons
    tuples = [tuple(reasons[i] for i in row if i != NONE) for row in matrix.tolist()]
    return spread(tuples, ids)
