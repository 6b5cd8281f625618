"""BG/NBD repeat-purchase model (Fader, Hardie & Lee 2005, "Counting Your Customers the
Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2)), in days.

x = repeat purchases (distinct order days - 1), t_x = time of the last purchase measured
from the first, T = time from the first purchase to the cut-off. While active, a
customer buys at rate lambda ~ Gamma(r, alpha); after each repeat purchase they drop out
with probability p ~ Beta(a, b).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

from app.classification.engine.types import FloatArray, IntArray

# Weakly informative defaults in days: a purchase every ~two months while active and
# a one-in-five chance of dropping out after each purchase. The centre of the prior
# that keeps small populations' fits finite, and the model when there is no data.
PRIOR: tuple[float, float, float, float] = (0.6, 40.0, 0.8, 3.0)
# Standard deviation of the log-normal prior on each parameter: weak, so a few hundred
# customers already outweigh it.
PRIOR_LOG_SD = 2.0
_LOG_BOUNDS = [(-7.0, 5.0), (-5.0, 12.0), (-7.0, 7.0), (-7.0, 9.0)]


@dataclass(frozen=True, slots=True)
class BGNBD:
    r: float
    alpha: float
    a: float
    b: float

    @property
    def params(self) -> tuple[float, float, float, float]:
        return (self.r, self.alpha, self.a, self.b)

    def log_likelihood(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """Per-customer log-likelihood, FHL (2005) eq. 6, in log space."""
        return _log_likelihood(np.asarray(self.params), x, t_x, T)[0]

    def p_alive(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """P(still active at T | x, t_x, T), FHL (2005) eq. 12."""
        odds = np.exp(np.minimum(self.log_dead_odds(x, t_x, T), 700.0))
        result: FloatArray = 1.0 / (1.0 + odds)
        return result

    def log_dead_odds(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x), the odds of having dropped
        out (FHL 2005 eq. 12); -inf with no repeat purchase, as no dropout can have
        happened yet."""
        with np.errstate(divide="ignore", invalid="ignore"):
            value = (
                np.log(self.a)
                - np.log(self.b + x - 1.0)
                + (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x))
            )
        result: FloatArray = np.where(x > 0, value, -np.inf)
        return result

    def p_no_purchase(
        self, x: FloatArray, t_x: FloatArray, T: FloatArray, horizon: float
    ) -> FloatArray:
        """P(no purchase in (T, T + horizon] | x, t_x, T).

        A BG/NBD customer drops out only right after a purchase, so one silent over the
        horizon is either already inactive, or active and drew no Poisson event:
        P(dead) + P(alive) * E[exp(-lambda * horizon)], with the posterior
        lambda | alive, x, T ~ Gamma(r + x, alpha + T) (FHL 2005, sec. 5), whose Laplace
        transform is ((alpha + T) / (alpha + T + horizon))^(r + x).
        """
        alive = self.p_alive(x, t_x, T)
        log_silent = (self.r + x) * (
            np.log(self.alpha + T) - np.log(self.alpha + T + max(horizon, 0.0))
        )
        result: FloatArray = 1.0 - alive * -np.expm1(log_silent)
        return result

    def expected_purchases(
        self, x: FloatArray, t_x: FloatArray, T: FloatArray, horizon: float
    ) -> FloatArray:
        """E[purchases in (T, T + horizon] | x, t_x, T], FHL (2005) eq. 10.

        The Gaussian hypergeometric factor is evaluated after Euler's transformation,
        2F1(a, b; c; z) = (1 - z)^(c-a-b) 2F1(c-a, c-b; c; z), which leaves only the
        small parameters (a + b - 1 - r, a - 1) in the numerator: stable for customers
        with many purchases where the textbook form overflows.
        """
        r, alpha, b = self.r, self.alpha, self.b
        # Eq. 10 has a removable singularity at a = 1.
        a = self.a if abs(self.a - 1.0) > 1e-4 else 1.0 + 1e-4
        t = max(horizon, 0.0)
        z = t / (alpha + T + t)
        c = a + b + x - 1.0
        p_alive = self.p_alive(x, t_x, T)
        with np.errstate(all="ignore"):
            euler = (
                c / (a - 1.0) * (1.0 - (1.0 - z) ** (a - 1.0) * hyp2f1(c - r - x, a - 1.0, c, z))
            )
            value = euler * p_alive
        # An active customer buys at most at the posterior mean rate over the horizon.
        ceiling = p_alive * (r + x) / (alpha + T) * t
        ok = np.isfinite(value) & (value >= 0.0) & (value <= ceiling * (1.0 + 1e-9) + 1e-12)
        if not bool(np.all(ok)):
            value = np.where(ok, value, self._approximate(x, T, t, p_alive))
        result: FloatArray = np.minimum(np.maximum(value, 0.0), ceiling)
        return result

    def _approximate(
        self, x: FloatArray, T: FloatArray, t: float, p_alive: FloatArray
    ) -> FloatArray:
        # For the rare extreme inputs where the series fails: the BG process's expected
        # count (1 - exp(-lambda p t)) / p at the posterior means of lambda and p.
        rate = (self.r + x) / (self.alpha + T)
        p = self.a / (self.a + self.b + x)
        result: FloatArray = p_alive * -np.expm1(-rate * p * t) / p
        return result


def _log_likelihood(
    params: FloatArray,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    *,
    gradient: bool = False,
    counts: tuple[FloatArray, IntArray] | None = None,
) -> tuple[FloatArray, FloatArray | None]:
    """FHL (2005) eq. 6 per customer and, optionally, its gradient in the log-parameters.

    ll = A + log(exp(B1) + [x > 0] exp(B2)) with
    A  = ln G(r+x) - ln G(r) + r ln alpha,
    B1 = ln B(a, b+x) - ln B(a, b) - (r+x) ln(alpha+T),
    B2 = ln B(a+1, b+x-1) - ln B(a, b) - (r+x) ln(alpha+t_x).

    `counts`: the distinct values of x and each row's place among them
    (`np.unique(x, return_inverse=True)`). The gamma, beta and digamma terms depend on x
    alone, so they are evaluated once per distinct count (a few dozen) rather than once
    per row: the same numbers, a fraction of the work of each optimiser step.
    """
    r, alpha, a, b = (float(v) for v in params)
    xs, at = counts if counts is not None else np.unique(x, return_inverse=True)
    repeat = x > 0
    log_alpha_T = np.log(alpha + T)
    log_alpha_tx = np.log(alpha + t_x)
    base = betaln(a, b)
    shared = (gammaln(r + xs) - gammaln(r))[at] + r * np.log(alpha)
    b1 = (betaln(a, b + xs) - base)[at] - (r + x) * log_alpha_T
    with np.errstate(divide="ignore", invalid="ignore"):
        b2 = np.where(
            repeat, (betaln(a + 1.0, b + xs - 1.0) - base)[at] - (r + x) * log_alpha_tx, -np.inf
        )
    mix = np.logaddexp(b1, b2)
    ll: FloatArray = shared + mix
    if not gradient:
        return ll, None
    w1 = np.exp(b1 - mix)
    w2 = 1.0 - w1
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + xs)[at]
    d_r = (digamma(r + xs) - digamma(r))[at] + np.log(alpha) - w1 * log_alpha_T - w2 * log_alpha_tx
    d_alpha = r / alpha - (r + x) * (w1 / (alpha + T) + w2 / (alpha + t_x))
    d_a = w1 * (psi_ab - psi_abx) + w2 * (digamma(a + 1.0) - digamma(a) + psi_ab - psi_abx)
    with np.errstate(invalid="ignore"):
        d_b2 = np.where(repeat, digamma(np.maximum(b + xs - 1.0, 1e-12))[at], 0.0)
    psi_b = digamma(b)
    d_b = w1 * (digamma(b + xs)[at] - psi_abx - psi_b + psi_ab) + w2 * (
        d_b2 - psi_abx - psi_b + psi_ab
    )
    # d/d(log theta) = theta * d/d(theta)
    grad = np.stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b], axis=1)
    return ll, grad


def whole_day_rows(
    x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None:
    """The distinct (x, t_x, T) of the usable rows, ages in whole days, and how many
    customers share each; None when no row is usable.

    Customers with the same (x, t_x, T) share a likelihood term; rounding the ages to
    whole days (rates are per day) makes most one-time buyers share one."""
    keep = np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T) & (T >= 0) & (x >= 0)
    if not bool(keep.any()):
        return None
    rows = np.stack([x[keep], np.round(np.minimum(t_x[keep], T[keep])), np.round(T[keep])], axis=1)
    unique, counts = np.unique(rows, axis=0, return_counts=True)
    return unique[:, 0], unique[:, 1], unique[:, 2], counts.astype(np.float64)


def fit_bgnbd(
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    *,
    prior: tuple[float, float, float, float] = PRIOR,
) -> BGNBD | None:
    """Maximum a posteriori fit over log-parameters (L-BFGS-B, analytic gradient).

    The likelihood is FHL (2005) eq. 6; a weak log-normal prior around `prior` keeps
    degenerate populations (nobody repeats, everybody repeats daily) finite and
    shrinks small ones. None if there is nothing to fit or the optimiser fails.
    """
    grouped = whole_day_rows(x, t_x, T)
    if grouped is None:
        return None
    ux, ut, uT, weights = grouped
    total = float(weights.sum())
    centre = np.log(np.asarray(prior, dtype=np.float64))
    precision = 1.0 / (PRIOR_LOG_SD**2)

    counts = np.unique(ux, return_inverse=True)

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        ll, grad = _log_likelihood(np.exp(theta), ux, ut, uT, gradient=True, counts=counts)
        assert grad is not None
        value = -(
            float(weights @ ll) - 0.5 * precision * float((theta - centre) @ (theta - centre))
        )
        g = -(weights @ grad - precision * (theta - centre))
        if not (np.isfinite(value) and np.all(np.isfinite(g))):
            return 1e300, np.zeros_like(theta)
        return value / total, g / total

    fitted = maximise_posterior(objective, centre, _LOG_BOUNDS)
    if fitted is None:
        return None
    r, alpha, a, b = (float(v) for v in fitted)
    return BGNBD(r=r, alpha=alpha, a=a, b=b)


def maximise_posterior(
    objective: Callable[[FloatArray], tuple[float, FloatArray]],
    centre: FloatArray,
    bounds: list[tuple[float, float]],
) -> FloatArray | None:
    """The parameters (not their logs) at the minimum of `objective`, a negative log
    posterior over log-parameters with its gradient, found by L-BFGS-B from the prior's
    centre; None when the optimiser fails or ends on a non-finite value (an objective
    signals a failed evaluation with 1e300)."""
    try:
        result = minimize(
            objective,
            centre.copy(),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 500},
        )
    except (ValueError, ArithmeticError):
        return None
    if not (np.all(np.isfinite(result.x)) and np.isfinite(result.fun) and result.fun < 1e299):
        return None
    fitted: FloatArray = np.exp(result.x)
    return fitted
