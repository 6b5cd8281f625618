"""Small regularised GLMs fitted by L-BFGS-B: the calibration layer on top of BG/NBD."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from app.classification.engine.types import FloatArray


def fit_glm(
    features: FloatArray,
    target: FloatArray,
    *,
    family: str,
    nonnegative: Sequence[int] = (),
    l2: float = 1e-3,
) -> FloatArray:
    """Coefficients (intercept first) of a logistic or Poisson (log link) regression.

    Coefficients listed in `nonnegative` are bounded at zero, which keeps the model
    monotone in those features (e.g. a longer silence never lowers churn risk).
    """
    n, k = features.shape
    design = np.hstack([np.ones((n, 1)), features])

    def objective(beta: FloatArray) -> tuple[float, FloatArray]:
        eta = design @ beta
        if family == "logistic":
            # log(1 + e^eta) - y * eta, stable for large |eta|
            loss = np.logaddexp(0.0, eta) - target * eta
            residual = expit(eta) - target
        else:
            eta = np.minimum(eta, 30.0)
            mu = np.exp(eta)
            loss = mu - target * eta
            residual = mu - target
        penalty = l2 * float(beta[1:] @ beta[1:])
        grad = design.T @ residual / n
        grad[1:] += 2 * l2 * beta[1:]
        return float(loss.mean()) + penalty, grad

    bounds: list[tuple[float | None, float | None]] = [(None, None)] * (k + 1)
    for index in nonnegative:
        bounds[index + 1] = (0.0, None)
    start = np.zeros(k + 1)
    mean = float(target.mean())
    if family == "logistic":
        mean = min(max(mean, 1e-6), 1 - 1e-6)
        start[0] = np.log(mean / (1 - mean))
    else:
        start[0] = np.log(max(mean, 1e-6))
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    coefficients: FloatArray = np.asarray(result.x, dtype=np.float64)
    return coefficients


def predict(coefficients: FloatArray, features: FloatArray, *, family: str) -> FloatArray:
    eta = coefficients[0] + features @ coefficients[1:]
    if family == "logistic":
        result: FloatArray = expit(eta)
    else:
        result = np.exp(np.minimum(eta, 30.0))
    return result
