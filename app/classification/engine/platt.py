"""Platt scaling: P(no order) = expit(intercept + slope * logit), the two numbers learned
on the newest window's outcomes (Platt 1999, "Probabilistic outputs for support vector
machines"). A model often ranks customers well and is still too sure or too unsure on
a given business; this keeps its ranking (the slope is never negative) and fixes its
scale. Two uses: on the BG/NBD logit as a candidate model, and as the final map of
whichever candidate answers, learned from its held-out predictions.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logit

from app.classification.engine.btyd import BGNBD
from app.classification.engine.features import btyd_logit
from app.classification.engine.regression import Glm, fit_glm, response
from app.classification.engine.summary import Summary
from app.classification.engine.types import FloatArray

P_FLOOR = 1e-4


def _fit(z: FloatArray, silent: FloatArray) -> Glm | None:
    if silent.size == 0 or silent.min() == silent.max():
        return None
    return fit_glm(z[:, None], silent, family="logistic", signs=[1], prior_sd=10.0)


def _apply(platt: Glm, z: FloatArray) -> FloatArray:
    eta = platt.intercept + platt.coef[0] * z
    result: FloatArray = np.clip(response(eta, family="logistic"), P_FLOOR, 1.0 - P_FLOOR)
    return result


def fit_platt(s: Summary, silent: FloatArray, btyd: BGNBD, *, horizon: float) -> Glm | None:
    """The intercept and (non-negative) slope on the BG/NBD logit; None without both classes."""
    return _fit(btyd_logit(btyd, s, horizon), silent)


def predict_platt(platt: Glm, s: Summary, btyd: BGNBD, *, horizon: float) -> FloatArray:
    """Recalibrated P(no order in the horizon) for customers with an order."""
    return _apply(platt, btyd_logit(btyd, s, horizon))


def fit_final_map(p: FloatArray, silent: FloatArray) -> Glm | None:
    """Platt scaling of probabilities `p` that were predicted for customers held out of
    their model's fit, against what those customers did; None without both classes."""
    return _fit(_logit(p), silent)


def apply_final_map(platt: Glm, p: FloatArray) -> FloatArray:
    """`p` through the final map: non-decreasing in `p`, so every monotonicity the
    answering model has (e.g. in silence) carries over."""
    return _apply(platt, _logit(p))


def _logit(p: FloatArray) -> FloatArray:
    result: FloatArray = logit(np.clip(p, P_FLOOR, 1.0 - P_FLOOR))
    return result
