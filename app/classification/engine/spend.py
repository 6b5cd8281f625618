"""Gamma-Gamma spend per order (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value
Curves for Customer Base Analysis", JMR 42(4), sec. 4; after Colombo & Jiang 1999).

Each order's amount is Gamma(p, nu) around a customer's own mean p/nu, and
nu ~ Gamma(q, gamma) across customers; so a customer's expected spend per order is a
credibility-weighted average of their observed mean and the population's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from app.classification.engine.types import FloatArray

MIN_CUSTOMERS = 10
# Without a fit, the customer's mean counts like this many orders against the
# population mean (a fixed credibility weight).
FALLBACK_WEIGHT = 1.0


@dataclass(frozen=True, slots=True)
class GammaGamma:
    p: float
    q: float
    gamma: float

    @property
    def population_mean(self) -> float:
        """E[M] = p * gamma / (q - 1), FHL (2005b) eq. 4's prior mean."""
        return self.p * self.gamma / (self.q - 1.0)

    def expected_spend(self, mean_spend: FloatArray, orders: FloatArray) -> FloatArray:
        """E[M | m_x, x] = (q - 1)/(p x + q - 1) * p gamma/(q - 1) + p x/(p x + q - 1) * m_x,
        FHL (2005b) eq. 5: never decreasing in the observed mean m_x."""
        weight = self.p * orders / (self.p * orders + self.q - 1.0)
        own = np.where(orders > 0, mean_spend, 0.0)
        result: FloatArray = (1.0 - weight) * self.population_mean + weight * own
        return result


@dataclass(frozen=True, slots=True)
class SpendFallback:
    """The population's mean order value with a fixed credibility weight, for when the
    Gamma-Gamma fit fails or there are too few customers."""

    mean: float

    @property
    def population_mean(self) -> float:
        return self.mean

    def expected_spend(self, mean_spend: FloatArray, orders: FloatArray) -> FloatArray:
        if self.mean <= 0.0:
            # No population to learn from: a customer's own mean is all there is.
            return mean_spend
        weight = orders / (orders + FALLBACK_WEIGHT)
        result: FloatArray = (1.0 - weight) * self.mean + weight * mean_spend
        return result


SpendModel = GammaGamma | SpendFallback


def _neg_log_likelihood(
    theta: FloatArray, m: FloatArray, x: FloatArray, log_m: FloatArray, log_x: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood of FHL (2005b) eq. 3 over (log p, log(q - 1),
    log gamma), with its gradient; q - 1 > 0 keeps the population mean finite."""
    p, q1, g = np.exp(theta)
    q = 1.0 + q1
    px = p * x
    log_xm_g = np.log(x * m + g)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1.0) * log_m
        + px * log_x
        - (px + q) * log_xm_g
    )
    d_p = x * (digamma(px + q) - digamma(px) + log_m + log_x - log_xm_g)
    d_q = digamma(px + q) - digamma(q) + np.log(g) - log_xm_g
    d_g = q / g - (px + q) / (x * m + g)
    grad = -np.array([np.mean(d_p) * p, np.mean(d_q) * q1, np.mean(d_g) * g])
    return float(-np.mean(ll)), grad


def fit_gamma_gamma(mean_spend: FloatArray, orders: FloatArray) -> SpendModel:
    """Maximum likelihood Gamma-Gamma on customers with a positive mean spend; the
    population mean (SpendFallback) when there are too few or the fit fails."""
    keep = (orders > 0) & (mean_spend > 0) & np.isfinite(mean_spend)
    m, x = mean_spend[keep], orders[keep]
    if m.size == 0:
        return SpendFallback(mean=0.0)
    fallback = SpendFallback(mean=float(np.sum(m * x) / np.sum(x)))
    if m.size < MIN_CUSTOMERS or float(np.ptp(m)) <= 0.0:
        return fallback
    # The likelihood is scale-equivariant in gamma: fitting in units of the median
    # amount keeps the optimiser in a well-conditioned region for any currency.
    scale = float(np.median(m))
    m = m / scale
    log_m, log_x = np.log(m), np.log(x)

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        value, grad = _neg_log_likelihood(theta, m, x, log_m, log_x)
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e300, np.zeros(3)
        return value, grad

    try:
        result = minimize(
            objective,
            np.log([2.0, 2.0, 2.0]),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-6.0, 8.0), (-6.0, 8.0), (-8.0, 10.0)],
            options={"maxiter": 500},
        )
    except (ValueError, FloatingPointError):
        return fallback
    p, q1, g = (float(v) for v in np.exp(result.x))
    fit = GammaGamma(p=p, q=1.0 + q1, gamma=g * scale)
    if not (np.all(np.isfinite(result.x)) and result.fun < 1e299):
        return fallback
    if not (np.isfinite(fit.population_mean) and fit.population_mean > 0.0):
        return fallback
    return fit
