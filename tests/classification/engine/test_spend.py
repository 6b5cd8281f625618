"""Gamma-Gamma spend per order: recovery from simulated orders, and the fallback."""

from __future__ import annotations

import numpy as np
import pytest

from app.classification.engine.simulate import simulate
from app.classification.engine.spend import GammaGamma, SpendFallback, fit_gamma_gamma
from app.classification.engine.summary import summarise


def test_recovers_simulated_parameters() -> None:
    sim = simulate(20_000, seed=3, p=6.0, q=4.0, gamma=50.0)
    s = summarise(sim.histories(800.0))
    fit = fit_gamma_gamma(s.mean_spend, s.orders)
    assert isinstance(fit, GammaGamma)
    assert fit.p == pytest.approx(6.0, rel=0.15)
    assert fit.q == pytest.approx(4.0, rel=0.15)
    assert fit.gamma == pytest.approx(50.0, rel=0.2)
    assert fit.population_mean == pytest.approx(6.0 * 50.0 / 3.0, rel=0.05)


def test_fit_does_not_depend_on_the_currency_unit() -> None:
    sim = simulate(5_000, seed=4)
    s = summarise(sim.histories(800.0))
    dollars = fit_gamma_gamma(s.mean_spend, s.orders)
    cents = fit_gamma_gamma(s.mean_spend * 100.0, s.orders)
    assert isinstance(dollars, GammaGamma) and isinstance(cents, GammaGamma)
    assert cents.population_mean == pytest.approx(100.0 * dollars.population_mean, rel=1e-4)


def test_expected_spend_is_a_credibility_weighted_mean() -> None:
    model = GammaGamma(p=6.0, q=4.0, gamma=50.0)
    orders = np.array([1.0, 1.0, 10.0, 10.0, 0.0])
    mean = np.array([50.0, 500.0, 50.0, 500.0, 0.0])
    spend = model.expected_spend(mean, orders)
    population = model.population_mean
    # Between the customer's own mean and the population's, closer to their own the
    # more orders they have; the population's with none.
    assert 50.0 < spend[2] < spend[0] < population
    assert population < spend[1] < spend[3] < 500.0
    assert spend[4] == pytest.approx(population)
    assert np.all(np.diff(model.expected_spend(np.linspace(1, 1000, 50), np.full(50, 3.0))) > 0)


def test_falls_back_to_the_population_mean() -> None:
    few = fit_gamma_gamma(np.array([10.0, 30.0]), np.array([1.0, 3.0]))
    assert few == SpendFallback(mean=25.0)
    same = fit_gamma_gamma(np.full(50, 20.0), np.ones(50))
    assert isinstance(same, SpendFallback) and same.mean == pytest.approx(20.0)
    nothing = fit_gamma_gamma(np.zeros(0), np.zeros(0))
    assert isinstance(nothing, SpendFallback)
    # With no population mean at all a customer's own mean is all there is.
    assert nothing.expected_spend(np.array([42.0]), np.array([1.0]))[0] == 42.0
    broken = fit_gamma_gamma(np.array([np.nan, np.inf, -1.0] * 10), np.ones(30))
    assert isinstance(broken, SpendFallback)


def test_a_single_order_day_says_nothing_of_the_next_orders_size() -> None:
    from app.classification.engine.estimate import estimate
    from tests.classification.engine_helpers import fitted_model, history

    model = fitted_model()

    def revenue(**fields: float) -> float:
        return float(estimate(summarise(history(**fields)), model).revenue[0])

    def spend(**fields: float) -> float:
        s = summarise(history(**fields))
        return revenue(**fields) / float(estimate(s, model).orders[0])

    once = {"orders": 1, "order_days": 1, "first_order_age": 40.0, "last_order_age": 40.0}
    # One-time buyers are expected to spend what the population does per order, whatever
    # their first order came to...
    small, large = spend(**once, revenue=20.0), spend(**once, revenue=2000.0)
    assert small == pytest.approx(large, rel=1e-9)
    assert small == pytest.approx(model.spend_model.population_mean, rel=0.01)
    # ...while a repeat buyer's own orders count.
    assert spend(revenue=3000.0) > spend(revenue=300.0)
