"""How a candidate model validates on the newest leak-free window, and how long that is.

A young installation has less history before T than two horizons, so no cohort as of
T - horizon can be labelled with a whole horizon. The newest window that fits is
(T - w, T] with w = min(horizon, history / 2): the cohort as of T - w has at least as
much history behind it as the window is long. Candidates are fitted on one half of that
cohort (a fixed alternation of rows, so the split is reproducible) and scored on the
other half; the figures say which model answers and how far to trust it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.classification.engine.types import FloatArray, Histories, IntArray

# A window shorter than this says too little about a horizon of weeks or months.
MIN_WINDOW_DAYS = 7.0
_P_CLIP = 1e-6


@dataclass(frozen=True, slots=True)
class Validation:
    """A candidate's figures on the held-out half of the newest window."""

    model: str  # the candidate's name, e.g. "bgnbd", "bgnbd_platt", "calibrated"
    customers: int  # held-out customers it was scored on
    window_days: float  # length of the window the outcomes were counted in
    silent_share: float  # share of them with no order in the window
    auc: float  # of P(no order) against "no order"; 0.5 when one class is empty
    brier: float
    log_loss: float


def training_window(history_days: float, horizon_days: float) -> float:
    """Whole days of the newest window to learn from: the horizon when the history
    before T holds two of them, else half the history; 0 when that is under a week."""
    if not (math.isfinite(history_days) and math.isfinite(horizon_days)):
        return 0.0
    window = math.floor(min(horizon_days, history_days / 2.0))
    return float(window) if window >= MIN_WINDOW_DAYS else 0.0


def history_days(h: Histories) -> float:
    """Days of order history before T: the oldest first order (0 without one)."""
    ages = h.first_order_age[np.isfinite(h.first_order_age)]
    return float(ages.max()) if ages.size else 0.0


def halves(size: int) -> tuple[IntArray, IntArray]:
    """Row indices to fit on and to validate on: every other row."""
    rows = np.arange(size, dtype=np.int64)
    return rows[0::2], rows[1::2]


def auc(p: FloatArray, label: FloatArray) -> float:
    """Area under the ROC curve by mid-ranks (the Mann-Whitney statistic)."""
    positives = float(label.sum())
    negatives = float(label.size) - positives
    if positives == 0 or negatives == 0:
        return 0.5
    order = np.argsort(p, kind="stable")
    ranks = np.empty(p.size, dtype=np.float64)
    ranks[order] = np.arange(1, p.size + 1, dtype=np.float64)
    # Ties share the mean of their ranks.
    values, inverse = np.unique(p, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks, minlength=values.size)
    counts = np.bincount(inverse, minlength=values.size)
    ranks = (sums / counts)[inverse]
    return float(
        (ranks[label > 0].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def validate(model: str, p: FloatArray, silent: FloatArray, window_days: float) -> Validation:
    """The candidate's figures for P(no order) `p` against the outcome `silent` (0/1)."""
    q = np.clip(p, _P_CLIP, 1.0 - _P_CLIP)
    n = int(p.size)
    return Validation(
        model=model,
        customers=n,
        window_days=float(window_days),
        silent_share=round(float(silent.mean()), 6) if n else 0.0,
        auc=round(auc(p, silent), 6) if n else 0.5,
        brier=round(float(np.mean((p - silent) ** 2)), 6) if n else 0.0,
        log_loss=round(float(-np.mean(silent * np.log(q) + (1 - silent) * np.log1p(-q))), 6)
        if n
        else 0.0,
    )


def best(candidates: list[Validation]) -> Validation:
    """The candidate with the lowest held-out log-loss (a proper score: it rewards both
    ranking and calibration); the earlier one on a tie, so simpler models come first."""
    return min(candidates, key=lambda v: v.log_loss)
