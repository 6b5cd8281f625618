"""Gamma-Gamma spend per order (Fader, Hardie & Lee 2005, "RFM and CLV", appendix;
Colombo & Jiang 1999)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

from app.classification.engine.types import FloatArray


@dataclass(frozen=True, slots=True)
class GammaGamma:
    p: float
    q: float
    v: float

    def expected_spend(self, mean_spend: FloatArray, orders: FloatArray) -> FloatArray:
        """E[spend per order | mean of `orders` observed amounts], eq. (5): a weighted
        average of the population mean p*v/(q-1) and the customer's own mean."""
        p, q, v = self.p, self.q, self.v
        weight = p * orders / (p * orders + q - 1.0)
        population = p * v / (q - 1.0)
        own = np.where(orders > 0, mean_spend, population)
        result: FloatArray = (1.0 - weight) * population + weight * own
        return result

    @property
    def population_mean(self) -> float:
        return self.p * self.v / (self.q - 1.0)


def fit_gamma_gamma(mean_spend: FloatArray, orders: FloatArray) -> GammaGamma | None:
    """Maximum likelihood on customers with a positive mean spend; None if it fails."""
    keep = (orders > 0) & (mean_spend > 0) & np.isfinite(mean_spend)
    m, x = mean_spend[keep], orders[keep]
    if m.size < 10:
        return None
    scale = float(np.median(m))
    m = m / scale  # the likelihood is scale-equivariant in v; this keeps it well posed

    def objective(theta: FloatArray) -> float:
        p, q, v = np.exp(theta)
        ll = (
            gammaln(p * x + q)
            - gammaln(p * x)
            - gammaln(q)
            + q * np.log(v)
            + (p * x - 1) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(x * m + v)
        )
        value = float(-np.mean(ll))
        return value if np.isfinite(value) else 1e300

    result = minimize(
        objective, np.log([2.0, 3.0, 2.0]), method="L-BFGS-B", bounds=[(-5, 6), (0.01, 6), (-6, 8)]
    )
    p, q, v = (float(t) for t in np.exp(result.x))
    if not (np.isfinite(p) and np.isfinite(q) and q > 1.0):
        return None
    return GammaGamma(p=p, q=q, v=v * scale)
