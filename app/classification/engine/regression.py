"""Small regularised generalised linear models (logistic, Poisson with log link) fitted by
L-BFGS-B with sign constraints: the supervised calibration layer's workhorse.

Features are standardised inside the fit; coefficients are returned on the original
scale, so a prediction is `intercept + features @ coef` with no stored means, and can
be accumulated one feature column at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from app.classification.engine.types import FloatArray

Family = Literal["logistic", "poisson"]
# A sign constraint on one coefficient: +1 (>= 0), -1 (<= 0) or 0 (free).
Sign = Literal[-1, 0, 1]
_MAX_ETA = 30.0
_SMALL_BATCH = 4096


@dataclass(frozen=True, slots=True)
class Glm:
    """intercept + coef . features, on the features' original scale."""

    intercept: float
    coef: tuple[float, ...]


def fit_glm(
    features: FloatArray,
    target: FloatArray,
    *,
    family: Family,
    signs: Sequence[Sign],
    prior_sd: float = 1.0,
) -> Glm | None:
    """Maximum a posteriori GLM: N(0, prior_sd^2) on each standardised coefficient
    (ridge), a flat prior on the intercept, and sign constraints.

    A sign constraint makes the prediction monotone in that feature (e.g. a longer
    silence never lowers the churn risk), whatever the sample says. None if the
    optimiser does not produce finite coefficients.
    """
    n, k = features.shape
    if n == 0 or len(signs) != k:
        return None
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (features - mean) / scale
    precision = 1.0 / (prior_sd**2 * n)

    def objective(beta: FloatArray) -> tuple[float, FloatArray]:
        eta = beta[0] + z @ beta[1:]
        if family == "logistic":
            # log(1 + e^eta) - y eta, stable for any eta
            loss = np.logaddexp(0.0, eta) - target * eta
            residual = expit(eta) - target
        else:
            eta = np.minimum(eta, _MAX_ETA)
            mu = np.exp(eta)
            loss = mu - target * eta
            residual = mu - target
        grad = np.empty(k + 1)
        grad[0] = residual.mean()
        grad[1:] = z.T @ residual / n + precision * beta[1:]
        value = float(loss.mean()) + 0.5 * precision * float(beta[1:] @ beta[1:])
        return value, grad

    bounds: list[tuple[float | None, float | None]] = [(None, None)]
    bounds += [(0.0, None) if s > 0 else (None, 0.0) if s < 0 else (None, None) for s in signs]
    # Start from the intercept-only model.
    start = np.zeros(k + 1)
    rate = max(float(target.mean()), 1e-6)
    if family == "logistic":
        rate = min(rate, 1.0 - 1e-6)
        start[0] = np.log(rate / (1.0 - rate))
    else:
        start[0] = np.log(rate)
    try:
        result = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 1000},
        )
    except (ValueError, FloatingPointError):
        return None
    beta = np.asarray(result.x, dtype=np.float64)
    if not np.all(np.isfinite(beta)):
        return None
    coef = beta[1:] / scale
    intercept = float(beta[0] - coef @ mean)
    return Glm(intercept=intercept, coef=tuple(float(c) for c in coef))


def linear_many(
    models: Sequence[Glm],
    columns: Iterable[FloatArray],
    size: int,
    *,
    bounds: Sequence[tuple[float, float]] = (),
) -> list[FloatArray]:
    """Each model's linear predictor: one matrix product for a small batch, accumulated
    one feature column at a time for a large one (no feature matrix in memory). With
    `bounds`, each column is first held to its (lowest, highest)."""
    if size <= _SMALL_BATCH:
        matrix = np.stack(list(columns), axis=1)
        if bounds:
            lo, hi = np.asarray(bounds).T
            matrix = np.minimum(np.maximum(matrix, lo), hi)
        return [m.intercept + matrix @ np.asarray(m.coef) for m in models]
    etas = [np.full(size, m.intercept) for m in models]
    for j, column in enumerate(columns):
        if bounds:
            column = np.clip(column, *bounds[j])
        for eta, m in zip(etas, models, strict=True):
            if m.coef[j] != 0.0:
                eta += m.coef[j] * column
    return etas


def response(eta: FloatArray, *, family: Family) -> FloatArray:
    """The mean for a linear predictor: logistic or exp (capped)."""
    if family == "logistic":
        result: FloatArray = expit(eta)
    else:
        result = np.exp(np.minimum(eta, _MAX_ETA))
    return result
