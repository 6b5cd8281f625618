"""BG/NBD: the likelihood's gradient, published parameters recovered from simulated
histories, and the predictive formulas against direct numerical integration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import betaln, hyp2f1
from scipy.stats import gamma

from app.classification.engine.btyd import BGNBD, _log_likelihood, fit_bgnbd
from app.classification.engine.simulate import simulate
from app.classification.engine.summary import summarise

# Fader, Hardie & Lee (2005), CDNOW sample, in weeks: r, alpha, a, b. Our unit is the
# day, so alpha is 7 times larger (lambda per day = lambda per week / 7).
CDNOW = (0.243, 4.414, 0.793, 2.426)
WEEK = 7.0


def _cdnow_simulation(customers: int, seed: int):  # type: ignore[no-untyped-def]
    r, alpha, a, b = CDNOW
    # CDNOW's cohort was acquired over 12 weeks and observed until week 39.
    return simulate(
        customers,
        seed=seed,
        r=r,
        alpha=alpha * WEEK,
        a=a,
        b=b,
        acquisition_days=12 * WEEK,
        end=39 * WEEK,
    )


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 12, 200).astype(float)
    T = rng.uniform(1.0, 600.0, 200)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, 200), 0.0)
    theta = np.log([0.7, 30.0, 0.9, 2.5])
    _, grad = _log_likelihood(np.exp(theta), x, t_x, T, gradient=True)
    assert grad is not None
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-6
        up = _log_likelihood(np.exp(theta + step), x, t_x, T)[0]
        down = _log_likelihood(np.exp(theta - step), x, t_x, T)[0]
        np.testing.assert_allclose((up - down) / 2e-6, grad[:, i], rtol=1e-5, atol=1e-6)


def test_recovers_cdnow_parameters_from_exact_times() -> None:
    sim = _cdnow_simulation(30_000, seed=7)
    times = sim.times
    purchases = np.sum(~np.isnan(times), axis=1)
    end = 39 * WEEK
    fit = fit_bgnbd(
        (purchases - 1).astype(float),
        np.nanmax(times, axis=1) - times[:, 0],
        end - times[:, 0],
    )
    assert fit is not None
    r, alpha, a, b = CDNOW
    assert fit.r == pytest.approx(r, rel=0.08)
    assert fit.alpha / WEEK == pytest.approx(alpha, rel=0.12)
    assert fit.a == pytest.approx(a, rel=0.15)
    assert fit.b == pytest.approx(b, rel=0.2)


def test_recovers_cdnow_parameters_through_histories() -> None:
    # The service's view: whole order days, BTYD frequency = order days - 1.
    sim = _cdnow_simulation(30_000, seed=11)
    s = summarise(sim.histories(39 * WEEK))
    fit = fit_bgnbd(s.x[s.buyer], s.t_x[s.buyer], s.T[s.buyer])
    assert fit is not None
    r, alpha, a, b = CDNOW
    assert fit.r == pytest.approx(r, rel=0.1)
    assert fit.alpha / WEEK == pytest.approx(alpha, rel=0.15)
    assert fit.a == pytest.approx(a, rel=0.2)
    assert fit.b == pytest.approx(b, rel=0.25)


def test_fit_is_deterministic_and_survives_degenerate_populations() -> None:
    sim = _cdnow_simulation(3_000, seed=2)
    s = summarise(sim.histories(39 * WEEK))
    first = fit_bgnbd(s.x, s.t_x, s.T)
    assert first == fit_bgnbd(s.x, s.t_x, s.T)
    nobody_repeats = fit_bgnbd(np.zeros(500), np.zeros(500), np.linspace(1, 300, 500))
    daily = fit_bgnbd(np.full(500, 300.0), np.full(500, 299.0), np.full(500, 300.0))
    for fit in (nobody_repeats, daily):
        assert fit is not None
        assert all(np.isfinite(v) and v > 0 for v in fit.params)
    assert fit_bgnbd(np.zeros(0), np.zeros(0), np.zeros(0)) is None
    assert fit_bgnbd(np.array([np.nan]), np.array([np.nan]), np.array([np.nan])) is None


MODEL = BGNBD(r=0.8, alpha=40.0, a=0.9, b=3.5)
CASES = [(0, 0.0, 30.0), (0, 0.0, 400.0), (1, 20.0, 60.0), (4, 150.0, 200.0), (12, 300.0, 700.0)]


@pytest.mark.parametrize(("x", "t_x", "T"), CASES)
def test_p_no_purchase_is_dead_or_silent_alive(x: int, t_x: float, T: float) -> None:
    """P(dead) + P(alive) * E[exp(-lambda t)] with the posterior Gamma(r + x, alpha + T),
    the expectation integrated numerically."""
    m, t = MODEL, 90.0
    args = (np.array([float(x)]), np.array([t_x]), np.array([T]))
    alive = float(m.p_alive(*args)[0])
    shape, rate = m.r + x, m.alpha + T

    def density(lam: float) -> float:
        return float(gamma.pdf(lam, shape, scale=1.0 / rate) * np.exp(-lam * t))

    silent_if_alive = quad(density, 0.0, np.inf)[0]
    expected = 1.0 - alive + alive * silent_if_alive
    assert float(m.p_no_purchase(*args, t)[0]) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize(("x", "t_x", "T"), CASES)
def test_expected_purchases_match_eq_10_and_integration(x: int, t_x: float, T: float) -> None:
    """FHL (2005) eq. 10 in its textbook form, and as E_p[(1 - E_lambda[e^(-lambda p t)]) / p]
    over the posteriors p ~ Beta(a, b + x), lambda ~ Gamma(r + x, alpha + T)."""
    m, t = MODEL, 180.0
    args = (np.array([float(x)]), np.array([t_x]), np.array([T]))
    got = float(m.expected_purchases(*args, t)[0])
    alive = float(m.p_alive(*args)[0])
    r, alpha, a, b = m.params
    z = t / (alpha + T + t)
    textbook = (
        (a + b + x - 1)
        / (a - 1)
        * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
        * alive
    )

    def integrand(p: float) -> float:
        silent = ((alpha + T) / (alpha + T + p * t)) ** (r + x)
        weight = np.exp((a - 1) * np.log(p) + (b + x - 1) * np.log1p(-p) - betaln(a, b + x))
        return float((1 - silent) / p * weight)

    integrated = quad(integrand, 0.0, 1.0, limit=200)[0] * alive
    assert got == pytest.approx(textbook, rel=1e-8)
    assert got == pytest.approx(integrated, rel=1e-5)


def test_predictions_are_finite_for_extreme_histories() -> None:
    x = np.array([0.0, 1.0, 500.0, 3000.0, 5.0])
    t_x = np.array([0.0, 0.0, 10.0, 2999.0, 1e5])
    T = np.array([0.0, 1e-9, 10.0, 3000.0, 1e5])
    for m in (MODEL, BGNBD(0.01, 0.01, 0.01, 0.01), BGNBD(50.0, 1e5, 1.0, 1e3)):
        for value in (
            m.p_alive(x, t_x, T),
            m.p_no_purchase(x, t_x, T, 365.0),
            m.expected_purchases(x, t_x, T, 365.0),
        ):
            assert np.all(np.isfinite(value)) and np.all(value >= 0)
        assert np.all(m.p_no_purchase(x, t_x, T, 365.0) <= 1.0)


def test_formula_is_calibrated_on_its_own_simulation() -> None:
    """With the true parameters, P(no purchase in the horizon) matches what the
    simulated customers then did."""
    r, alpha, a, b = 0.5, 20.0, 0.8, 4.0
    sim = simulate(20_000, seed=21, r=r, alpha=alpha, a=a, b=b)
    cutoff, horizon = 600.0, 120.0
    times = sim.times
    before = np.where(times <= cutoff, times, np.nan)
    n = np.sum(~np.isnan(before), axis=1)
    x = (n - 1).astype(float)
    T = cutoff - times[:, 0]
    t_x = np.nanmax(before, axis=1) - times[:, 0]
    predicted = BGNBD(r, alpha, a, b).p_no_purchase(x, t_x, T, horizon)
    silent = ~np.any((times > cutoff) & (times <= cutoff + horizon), axis=1)
    bins = np.minimum((predicted * 10).astype(int), 9)
    for k in range(10):
        members = bins == k
        if members.sum() >= 300:
            assert abs(predicted[members].mean() - silent[members].mean()) < 0.04
