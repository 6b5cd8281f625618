"""Pareto/NBD repeat-purchase model (Schmittlein, Morrison & Colombo 1987, "Counting Your
Customers: Who Are They and What Will They Do Next?", Management Science 33(1)), in days.

x = repeat purchases, t_x = time of the last purchase measured from the first, T = time
from the first purchase to the cut-off (as in btyd.py). While active, a customer buys at
rate lambda ~ Gamma(r, alpha); their lifetime is exponential with rate mu ~ Gamma(s, beta),
independent of lambda. Unlike BG/NBD, a customer can drop out at any time, also before
their first repeat purchase.

Every expression here reduces to one integral,
    J(t0, t1; p, q) = int_{t0}^{t1} (alpha + tau)^-p (beta + tau)^-q dtau,
evaluated in closed form with the Gaussian hypergeometric function (Fader & Hardie 2005,
"A Note on Deriving the Pareto/NBD Model and Related Expressions", eqs. 3-4 and the A0
term with its alpha >= beta and alpha < beta cases), in log space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, hyp2f1

from app.classification.engine.btyd import PRIOR_LOG_SD, maximise_posterior, whole_day_rows
from app.classification.engine.types import FloatArray

# Weakly informative defaults in days: a purchase every ~two months while active and a
# mean lifetime of about a year and a half. The centre of the prior on small
# populations, as btyd.PRIOR is for BG/NBD.
PRIOR: tuple[float, float, float, float] = (0.6, 40.0, 0.8, 400.0)
_LOG_BOUNDS = [(-7.0, 5.0), (-5.0, 12.0), (-7.0, 5.0), (-5.0, 14.0)]
# Step of the forward differences in the log-parameters: near the square root of the
# objective's rounding error, where a forward difference is as good as it gets. Each
# evaluation is two 2F1 calls over every row; central differences would take twice as
# many for no better a fit.
_STEP = 1e-7


# Terms of the direct series when scipy's 2F1 fails; each is at most z^k times the last.
_SERIES_TERMS = 2000


def _hyp2f1_one(b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """2F1(1, b; c; z) for 0 < b < c and 0 <= z < 1.

    scipy's hyp2f1 overflows for some of these (large c - b with z near 1) although the
    value is modest; there the series sum_k (b)_k / (c)_k z^k is summed directly: its
    terms are positive and shrink by (b + k) / (c + k) z < 1 each.
    """
    b, c, z = np.broadcast_arrays(b, c, z)
    value = np.asarray(hyp2f1(1.0, b, c, z), dtype=np.float64)
    bad = ~np.isfinite(value) | (value < 1.0)
    if bool(bad.any()):
        bb, cc, zz = b[bad], c[bad], z[bad]
        term = np.ones_like(zz)
        total = np.ones_like(zz)
        for k in range(_SERIES_TERMS):
            term = term * (bb + k) / (cc + k) * zz
            total = total + term
            if float(term.max()) < 1e-17 * float(total.min()):
                break
        value = value.copy()
        value[bad] = total
    return value


def _log_tail(alpha: float, beta: float, p: FloatArray, q: FloatArray, t: FloatArray) -> FloatArray:
    """log int_t^inf (alpha + tau)^-p (beta + tau)^-q dtau, for p + q > 1.

    Substituting w = (c + t) / (c + tau), c the larger of alpha and beta, gives
    (c + t)^-m / m * 2F1(m, e; m + 1; z) with m = p + q - 1, z = |alpha - beta| / (c + t)
    and e the exponent on the smaller one's factor (FHL 2005 note, A0). Euler's
    transformation turns that into (1 - z)^(1 - e) 2F1(1, m + 1 - e; m + 1; z): a series
    of positive terms that never exceed one, finite for every z < 1 whatever x is.
    """
    m = p + q - 1.0
    if alpha >= beta:
        big, small, e = alpha, beta, q
    else:
        big, small, e = beta, alpha, p
    log_big = np.log(big + t)
    z = (big - small) / (big + t)
    log_one_minus_z = np.log(small + t) - log_big
    series = _hyp2f1_one(m + 1.0 - e, m + 1.0, z)
    result: FloatArray = -m * log_big - np.log(m) + (1.0 - e) * log_one_minus_z + np.log(series)
    return result


def _log_segment(
    alpha: float,
    beta: float,
    p: FloatArray,
    q: FloatArray,
    t0: FloatArray,
    t1: FloatArray,
) -> FloatArray:
    """log J(t0, t1; p, q) as the difference of two tails; -inf for an empty interval."""
    first = _log_tail(alpha, beta, p, q, t0)
    second = _log_tail(alpha, beta, p, q, t1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = -np.expm1(np.minimum(second - first, 0.0))
        value = first + np.log(gap)
    result: FloatArray = np.where(t1 > t0, value, -np.inf)
    return result


@dataclass(frozen=True, slots=True)
class ParetoNBD:
    r: float
    alpha: float
    s: float
    beta: float

    @property
    def params(self) -> tuple[float, float, float, float]:
        return (self.r, self.alpha, self.s, self.beta)

    def log_likelihood(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """Per-customer log-likelihood, FHL (2005 note) eq. 3 with the A0 term as J:
        L = G(r+x) alpha^r beta^s / G(r) * [(alpha+T)^-(r+x) (beta+T)^-s
            + s J(t_x, T; r+x, s+1)]."""
        return _log_likelihood(np.asarray(self.params), x, t_x, T)

    def log_dead_odds(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """log P(inactive at T) / P(active at T): the A0 part of the likelihood over its
        alive part (FHL 2005 note, eq. 11 inverted)."""
        r, alpha, s, beta = self.params
        p = r + x
        alive = -p * np.log(alpha + T) - s * np.log(beta + T)
        dead = np.log(s) + _log_segment(alpha, beta, p, np.full_like(p, s + 1.0), t_x, T)
        result: FloatArray = dead - alive
        return result

    def p_alive(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """P(still active at T | x, t_x, T), FHL (2005 note) eq. 11."""
        odds = np.exp(np.minimum(self.log_dead_odds(x, t_x, T), 700.0))
        result: FloatArray = 1.0 / (1.0 + odds)
        return result

    def p_no_purchase(
        self, x: FloatArray, t_x: FloatArray, T: FloatArray, horizon: float
    ) -> FloatArray:
        """P(no purchase in (T, T + horizon] | x, t_x, T).

        Given active at T, lambda ~ Gamma(r + x, alpha + T) and mu ~ Gamma(s, beta + T)
        independently, and the first event after T is a purchase before the horizon
        with probability int_0^t lambda exp(-(lambda + mu) tau) dtau. Its expectation
        factorises in tau: (r + x)(alpha + T)^(r+x) (beta + T)^s J(T, T + t; r+x+1, s).
        """
        r, alpha, s, beta = self.params
        t = max(float(horizon), 0.0)
        p = r + x
        log_buy = (
            np.log(p)
            + p * np.log(alpha + T)
            + s * np.log(beta + T)
            + _log_segment(alpha, beta, p + 1.0, np.full_like(p, s), T, T + t)
        )
        buy_if_alive = np.clip(np.exp(np.minimum(log_buy, 0.0)), 0.0, 1.0)
        result: FloatArray = 1.0 - self.p_alive(x, t_x, T) * buy_if_alive
        return result

    def expected_purchases(
        self, x: FloatArray, t_x: FloatArray, T: FloatArray, horizon: float
    ) -> FloatArray:
        """E[purchases in (T, T + horizon] | x, t_x, T], FHL (2005 note) eq. 17:
        P(alive) (r + x)(beta + T) / ((alpha + T)(s - 1)) [1 - ((beta + T)/(beta + T + t))^(s-1)],
        with the bracket over (s - 1) written as -expm1((s - 1) log u) / (s - 1)."""
        r, alpha, s, beta = self.params
        t = max(float(horizon), 0.0)
        log_u = np.log(beta + T) - np.log(beta + T + t)
        k = s - 1.0
        # s = 1 is the log limit of the same expression.
        lifetime = -np.expm1(k * log_u) / k if abs(k) > 1e-8 else -log_u
        result: FloatArray = self.p_alive(x, t_x, T) * (r + x) * (beta + T) / (alpha + T) * lifetime
        return np.maximum(result, 0.0)


def _log_likelihood(
    params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    r, alpha, s, beta = (float(v) for v in params)
    p = r + x
    shared = gammaln(p) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -p * np.log(alpha + T) - s * np.log(beta + T)
    dead = np.log(s) + _log_segment(alpha, beta, p, np.full_like(p, s + 1.0), t_x, T)
    result: FloatArray = shared + np.logaddexp(alive, dead)
    return result


def fit_pareto_nbd(
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    *,
    prior: tuple[float, float, float, float] = PRIOR,
) -> ParetoNBD | None:
    """Maximum a posteriori fit over log-parameters (L-BFGS-B, forward differences).

    The likelihood is FHL (2005 note) eq. 3; the same weak log-normal prior as BG/NBD's
    keeps degenerate populations finite. Rows are grouped on whole days as for BG/NBD
    (btyd.whole_day_rows). None if there is nothing to fit or the optimiser fails.
    """
    grouped = whole_day_rows(x, t_x, T)
    if grouped is None:
        return None
    ux, ut, uT, weights = grouped
    total = float(weights.sum())
    centre = np.log(np.asarray(prior, dtype=np.float64))
    precision = 1.0 / (PRIOR_LOG_SD**2)

    def value(theta: FloatArray) -> float:
        with np.errstate(all="ignore"):
            ll = _log_likelihood(np.exp(theta), ux, ut, uT)
        result = -(
            float(weights @ ll) - 0.5 * precision * float((theta - centre) @ (theta - centre))
        )
        return result / total if np.isfinite(result) else 1e300

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        current = value(theta)
        grad = np.empty_like(theta)
        for i in range(theta.size):
            step = np.zeros_like(theta)
            step[i] = _STEP
            grad[i] = (value(theta + step) - current) / _STEP
        if current >= 1e299 or not np.all(np.isfinite(grad)) or np.any(np.abs(grad) > 1e290):
            return 1e300, np.zeros_like(theta)
        return current, grad

    fitted = maximise_posterior(objective, centre, _LOG_BOUNDS)
    if fitted is None:
        return None
    r, alpha, s, beta = (float(v) for v in fitted)
    return ParetoNBD(r=r, alpha=alpha, s=s, beta=beta)
