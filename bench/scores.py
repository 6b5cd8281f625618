"""The figures both backtests print, over plain arrays: ranking (AUC, Spearman, top-20%
capture), probability quality (Brier, log-loss, calibration error), what sampling
alone does to the calibration error, and whether the stages mean their names."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.stats import spearmanr

from app.classification.engine.types import FloatArray

TOP = 0.2
BINS = 10
EPS = 1e-6


def auc(score: FloatArray, label: FloatArray) -> float:
    """Area under the ROC curve: Mann-Whitney U / (n1 n0), ties at average rank."""
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    positive = label == 1
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if not n1 or not n0:
        return float("nan")
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def brier(p: FloatArray, label: FloatArray) -> float:
    return float(np.mean((p - label) ** 2))


def log_loss(p: FloatArray, label: FloatArray) -> float:
    q = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(label * np.log(q) + (1 - label) * np.log(1 - q)))


def calibration_bins(p: FloatArray, label: FloatArray) -> list[tuple[float, float]]:
    """(mean predicted, observed share) in each of the ten bins `calibration_error` uses."""
    order = np.argsort(p, kind="stable")
    return [(float(p[b].mean()), float(label[b].mean())) for b in np.array_split(order, BINS)]


def calibration_error(p: FloatArray, label: FloatArray) -> float:
    """Mean |mean predicted - observed| over ten equal-size bins of the prediction."""
    return float(np.mean([abs(m - o) for m, o in calibration_bins(p, label)]))


def chance_calibration_error(
    p: FloatArray, *, draws: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """The calibration error of a forecaster that is exactly right, with these
    probabilities and this many customers: outcomes drawn from `p` itself (seeded).
    (5th percentile, median, 95th percentile): what sampling alone gives."""
    rng = np.random.default_rng(seed)
    errors = [
        calibration_error(p, (rng.uniform(size=p.size) < p).astype(float)) for _ in range(draws)
    ]
    low, mid, high = np.percentile(errors, [5, 50, 95])
    return float(low), float(mid), float(high)


def capture(score: FloatArray, revenue: FloatArray) -> float:
    """The share of `revenue` earned by the top 20% by `score` (ties by position)."""
    order = np.lexsort((np.arange(score.size), -score))
    top = order[: round(TOP * score.size)]
    total = float(revenue.sum())
    return float(revenue[top].sum() / total) if total > 0 else float("nan")


def spearman(a: FloatArray, b: FloatArray) -> float:
    return float(spearmanr(a, b).statistic)


def stage_targets(stages: np.ndarray, silent: FloatArray) -> str:
    """Whether holdout inactivity rises loyal < returning < at_risk < churned, at least 70%
    of `churned` and at most 25% of `loyal` inactive; a stage nobody is in is left out."""
    rates = {
        code: float(silent[stages == code].mean())
        for code in ("loyal", "returning", "at_risk", "churned")
        if (stages == code).any()
    }
    values = list(rates.values())
    checks = {
        "rising": all(a < b for a, b in itertools.pairwise(values)),
        "churned >= 70%": rates["churned"] >= 0.7 if "churned" in rates else None,
        "loyal <= 25%": rates["loyal"] <= 0.25 if "loyal" in rates else None,
    }
    shown = {True: "ok", False: "MISS", None: "nobody in the stage"}
    return ", ".join(f"{name} {shown[ok]}" for name, ok in checks.items())
