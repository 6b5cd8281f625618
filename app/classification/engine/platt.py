"""Platt scaling: P(no order) = expit(intercept + slope * logit), the two numbers learned
on the newest window's outcomes (Platt 1999, "Probabilistic outputs for support vector
machines"). A model often ranks customers well and is still too sure or too unsure on
a given business; this keeps its ranking (the slope is never negative) and fixes its
scale. Here it is a candidate model on the BG/NBD logit; the final map of whichever
candidate answers is in recalibration.py.
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


def _logit(p: FloatArray) -> FloatArray:
    result: FloatArray = logit(np.clip(p, P_FLOOR, 1.0 - P_FLOOR))
    return result
