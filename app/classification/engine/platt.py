"""Platt scaling of BG/NBD: P(no order) = expit(intercept + slope * BG/NBD logit), the two
numbers learned on the newest window's outcomes (Platt 1999, "Probabilistic outputs for
support vector machines"). BG/NBD often ranks customers well and is still too sure or too
unsure on a given business; this keeps its ranking and fixes its scale.
"""

from __future__ import annotations

import numpy as np

from app.classification.engine.btyd import BGNBD
from app.classification.engine.features import btyd_logit
from app.classification.engine.regression import Glm, fit_glm, response
from app.classification.engine.summary import Summary
from app.classification.engine.types import FloatArray

P_FLOOR = 1e-4


def fit_platt(s: Summary, silent: FloatArray, btyd: BGNBD, *, horizon: float) -> Glm | None:
    """The intercept and (non-negative) slope on the BG/NBD logit; None without both classes."""
    if silent.size == 0 or silent.min() == silent.max():
        return None
    z = btyd_logit(btyd, s, horizon)[:, None]
    return fit_glm(z, silent, family="logistic", signs=[1], prior_sd=10.0)


def predict_platt(platt: Glm, s: Summary, btyd: BGNBD, *, horizon: float) -> FloatArray:
    """Recalibrated P(no order in the horizon) for customers with an order."""
    eta = platt.intercept + platt.coef[0] * btyd_logit(btyd, s, horizon)
    result: FloatArray = np.clip(response(eta, family="logistic"), P_FLOOR, 1.0 - P_FLOOR)
    return result
