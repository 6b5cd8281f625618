"""BG/NBD repeat-purchase model (Fader, Hardie & Lee 2005, "Counting Your Customers the
Easy Way"), in days, vectorised over customers.

x = repeat purchases (distinct order days - 1), t_x = day of the last purchase measured
from the first, T = days from the first purchase to the cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from app.classification.engine.types import FloatArray

# Weakly informative defaults: a purchase every ~2 months on average, with dropout
# after a handful of purchases; used when a population is too small to fit.
PRIOR = (0.6, 40.0, 0.8, 3.0)


@dataclass(frozen=True, slots=True)
class BGNBD:
    r: float
    alpha: float
    a: float
    b: float

    def log_likelihood(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """Per-customer log-likelihood, eq. (6) of the paper in log space."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        shared = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        alive = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            dead = np.where(
                x > 0,
                betaln(a + 1, b + x - 1) - betaln(a, b) - (r + x) * np.log(alpha + t_x),
                -np.inf,
            )
        result: FloatArray = shared + np.logaddexp(alive, dead)
        return result

    def p_alive(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """P(still active at T | history), eq. (12)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_ratio = (
                np.log(self.a)
                - np.log(self.b + x - 1)
                + (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x))
            )
            odds = np.where(x > 0, np.exp(np.minimum(log_ratio, 700.0)), 0.0)
        result: FloatArray = 1.0 / (1.0 + odds)
        return result

    def p_no_purchase(
        self, x: FloatArray, t_x: FloatArray, T: FloatArray, horizon: float
    ) -> FloatArray:
        """P(no purchase in (T, T + horizon] | history).

        Dead customers buy nothing; an alive one with rate lambda ~ Gamma(r + x, alpha + T)
        (the posterior) buys nothing with probability E[exp(-lambda h)], and may also drop
        out after a purchase, which this bound ignores (a dropout only happens after a
        purchase, so it cannot prevent the first one).
        """
        alive = self.p_alive(x, t_x, T)
        silent_if_alive = np.exp(
            (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + T + horizon))
        )
        result: FloatArray = (1.0 - alive) + alive * silent_if_alive
        return result

    def expected_purchases(
        self, x: FloatArray, t_x: FloatArray, T: FloatArray, horizon: float
    ) -> FloatArray:
        """E[purchases in (T, T + horizon] | history], eq. (10)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        if a <= 1.0:
            # Eq. (10) needs a > 1; the rate x P(alive) is the first-order alternative.
            fallback: FloatArray = self.p_alive(x, t_x, T) * (r + x) / (alpha + T) * horizon
            return fallback
        z = horizon / (alpha + T + horizon)
        with np.errstate(all="ignore"):
            hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
            term = 1.0 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon))) * hyp
            value = (a + b + x - 1) / (a - 1) * term * self.p_alive(x, t_x, T)
        simple = self.p_alive(x, t_x, T) * (r + x) / (alpha + T) * horizon
        ok = np.isfinite(value) & (value >= 0)
        result: FloatArray = np.where(ok, value, simple)
        return result


def fit_bgnbd(
    x: FloatArray, t_x: FloatArray, T: FloatArray, *, start: tuple[float, ...] = PRIOR
) -> BGNBD | None:
    """Maximum likelihood over log-parameters; None when the optimiser does not converge."""
    if x.size == 0:
        return None
    # Customers with the same (x, t_x, T) share a likelihood term: fit on unique rows.
    rows = np.stack([x, np.round(t_x, 2), np.round(T, 2)], axis=1)
    unique, counts = np.unique(rows, axis=0, return_counts=True)
    ux, ut, uT = unique[:, 0], unique[:, 1], unique[:, 2]
    weights = counts.astype(np.float64)

    def objective(theta: FloatArray) -> float:
        model = BGNBD(*np.exp(theta))
        ll = model.log_likelihood(ux, ut, uT)
        if not np.all(np.isfinite(ll)):
            return 1e300
        # A faint pull towards the prior keeps degenerate populations finite.
        penalty = 1e-3 * float(np.sum((theta - np.log(PRIOR)) ** 2))
        return float(-np.dot(weights, ll) / weights.sum()) + penalty

    result = minimize(
        objective,
        np.log(np.asarray(start, dtype=np.float64)),
        method="L-BFGS-B",
        bounds=[(-8.0, 8.0), (-6.0, 10.0), (-8.0, 8.0), (-8.0, 8.0)],
    )
    if not np.all(np.isfinite(result.x)):
        return None
    return BGNBD(*(float(v) for v in np.exp(result.x)))
