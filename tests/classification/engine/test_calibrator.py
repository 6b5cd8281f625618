"""The calibration layer on its own: learns the cohort's outcomes, keeps its sign
constraints, and predicts a calibrated mean on fresh customers of the same process."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from app.classification.engine.btyd import fit_bgnbd
from app.classification.engine.calibration import fit_buyers, predict_buyers
from app.classification.engine.features import BUYER_COLUMNS, population_ranks
from app.classification.engine.simulate import simulate
from app.classification.engine.summary import summarise, take

HORIZON = 120.0


def test_learns_the_cohort_and_predicts_fresh_customers() -> None:
    train, fresh = simulate(8000, seed=21), simulate(8000, seed=22)
    cutoff = 600.0
    s = summarise(train.histories(cutoff))
    orders = train.outcomes(cutoff, cutoff + HORIZON).orders.astype(np.float64)
    btyd = fit_bgnbd(s.x, s.t_x, s.T)
    assert btyd is not None
    calibrator = fit_buyers(s, orders, btyd, horizon=HORIZON, population_interval=30.0)
    assert calibrator is not None
    # Sign constraints: every churn coefficient with a sign keeps it.
    for column, coef in zip(BUYER_COLUMNS, calibrator.churn.coef, strict=True):
        if column.churn == 1:
            assert coef >= 0.0, column.name
        elif column.churn == -1:
            assert coef <= 0.0, column.name
        elif column.churn is None:
            assert coef == 0.0, column.name
    s_new = summarise(fresh.histories(cutoff))
    churn, expected = predict_buyers(
        calibrator, s_new, btyd, horizon=HORIZON, population_interval=30.0
    )
    future = fresh.outcomes(cutoff, cutoff + HORIZON).orders
    assert churn.mean() == pytest.approx(float((future == 0).mean()), abs=0.02)
    assert expected.sum() == pytest.approx(float(future.sum()), rel=0.1)


def test_one_outcome_class_is_not_fitted() -> None:
    sim = simulate(500, seed=2)
    s = summarise(sim.histories(400.0))
    btyd = fit_bgnbd(s.x, s.t_x, s.T)
    assert btyd is not None
    nobody = np.zeros(s.x.size)
    assert fit_buyers(s, nobody, btyd, horizon=HORIZON, population_interval=30.0) is None


def test_orders_learned_on_a_shorter_window_grow_to_the_horizon() -> None:
    # Learned on 90-day outcomes, asked for a year: the window's count model grown to
    # the year as BG/NBD says is close to what the year brings, and closer than the
    # window's regression evaluated at the year.
    train, fresh = simulate(8000, seed=31), simulate(8000, seed=32)
    cutoff, window, year = 600.0, 90.0, 365.0
    s = summarise(train.histories(cutoff))
    orders = train.outcomes(cutoff, cutoff + window).orders.astype(np.float64)
    btyd = fit_bgnbd(s.x, s.t_x, s.T)
    assert btyd is not None
    calibrator = fit_buyers(s, orders, btyd, horizon=window, population_interval=30.0)
    assert calibrator is not None
    s_fresh = summarise(fresh.histories(cutoff))
    ordered = fresh.outcomes(cutoff, cutoff + year).orders.astype(np.float64)[s_fresh.buyer]
    args = (calibrator, s_fresh, btyd)
    _, grown = predict_buyers(*args, horizon=year, population_interval=30.0, window=window)
    _, stretched = predict_buyers(*args, horizon=year, population_interval=30.0)
    grown, stretched = grown[s_fresh.buyer], stretched[s_fresh.buyer]
    assert grown.mean() == pytest.approx(ordered.mean(), rel=0.1)
    assert abs(grown.mean() - ordered.mean()) < abs(stretched.mean() - ordered.mean())
    # At the window itself nothing changes.
    _, at_window = predict_buyers(*args, horizon=window, population_interval=30.0, window=window)
    _, plain = predict_buyers(*args, horizon=window, population_interval=30.0)
    assert np.array_equal(at_window, plain)


def test_hurdle_is_p_any_times_orders_given_any() -> None:
    from app.classification.engine.calibration import hurdle

    # Simulated: a zero-inflated count with known parts is recovered in the mean.
    rng = np.random.default_rng(4)
    given_any, p_silent = rng.uniform(1.0, 5.0, 50_000), rng.uniform(0.1, 0.9, 50_000)
    buying = rng.uniform(size=given_any.size) >= p_silent
    counts = np.where(buying, 1 + rng.poisson(given_any - 1.0), 0)
    assert hurdle(p_silent, given_any).mean() == pytest.approx(counts.mean(), rel=0.02)
    # A surer buyer expects more orders; given any, at least one.
    orders = hurdle(np.array([0.9, 0.5, 0.1]), np.full(3, 0.2))
    assert np.all(np.diff(orders) > 0)
    assert orders == pytest.approx([0.1, 0.5, 0.9])


def test_a_customer_beyond_the_cohort_is_predicted_as_its_nearest_edge() -> None:
    # Fitted on a cohort as of day 300, asked about customers as of day 900: older,
    # with more orders than anyone it learned from. Their features are held to the
    # cohort's ranges, so the regressions are never extended past their data.
    sim = simulate(6000, seed=41)
    s = summarise(sim.histories(300.0))
    orders = sim.outcomes(300.0, 300.0 + HORIZON).orders.astype(np.float64)
    btyd = fit_bgnbd(s.x, s.t_x, s.T)
    assert btyd is not None
    calibrator = fit_buyers(s, orders, btyd, horizon=HORIZON, population_interval=30.0)
    assert calibrator is not None
    assert len(calibrator.ranges) == len(BUYER_COLUMNS)
    assert all(lo <= hi for lo, hi in calibrator.ranges)
    names = [c.name for c in BUYER_COLUMNS]
    age = calibrator.ranges[names.index("log_activity_age")]
    later = summarise(sim.histories(900.0))
    assert float(np.log1p(later.activity_age).max()) > age[1]
    unclipped = replace(calibrator, ranges=())
    args = (later, btyd)
    held, _ = predict_buyers(calibrator, *args, horizon=HORIZON, population_interval=30.0)
    free, _ = predict_buyers(unclipped, *args, horizon=HORIZON, population_interval=30.0)
    assert np.all((held > 0.0) & (held < 1.0))
    assert not np.allclose(held, free)
    # Inside the ranges nothing changes.
    inside, _ = predict_buyers(calibrator, s, btyd, horizon=HORIZON, population_interval=30.0)
    plain, _ = predict_buyers(unclipped, s, btyd, horizon=HORIZON, population_interval=30.0)
    assert np.array_equal(inside, plain)


@pytest.mark.parametrize("seed", [11, 12])
def test_the_populations_age_is_not_taken_for_activity(seed: int) -> None:
    # One acquisition wave of customers whose rates never change: the cohort at
    # T - window is 60-120 days old, the population at T 180-240 days. Having been a
    # customer longer is not buying more: the same window after T is predicted as the
    # window before it was learned, in orders and in silence (repeat purchases and span
    # enter as a place among the population's buyers, not as counts that grow with age).
    sim = simulate(8000, seed=seed, acquisition_days=60.0, end=700.0)
    cutoff = 300.0
    s_then = summarise(sim.histories(cutoff - HORIZON))
    btyd_then = fit_bgnbd(s_then.x, s_then.t_x, s_then.T)
    assert btyd_then is not None
    orders = sim.outcomes(cutoff - HORIZON, cutoff).orders.astype(np.float64)
    calibrator = fit_buyers(s_then, orders, btyd_then, horizon=HORIZON, population_interval=30.0)
    assert calibrator is not None
    s = summarise(sim.histories(cutoff))
    btyd = fit_bgnbd(s.x, s.t_x, s.T)
    assert btyd is not None
    ranks = population_ranks(s)
    churn, expected = predict_buyers(
        calibrator, s, btyd, horizon=HORIZON, population_interval=30.0, ranks=ranks
    )
    future = sim.outcomes(cutoff, cutoff + HORIZON).orders
    assert expected[s.buyer].sum() == pytest.approx(future[s.buyer].sum(), rel=0.08)
    assert churn[s.buyer].mean() == pytest.approx((future == 0)[s.buyer].mean(), abs=0.02)
    # A customer asked about alone is placed by the population's ranks, as in the whole.
    row = np.flatnonzero(s.buyer)[:1]
    one, _ = predict_buyers(
        calibrator, take(s, row), btyd, horizon=HORIZON, population_interval=30.0, ranks=ranks
    )
    assert one == pytest.approx(churn[row], rel=1e-12)
