"""The population model: fallbacks to priors, determinism, storage, calibration."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from app.classification.engine import PopulationModel, classify, fit_model, prior_model
from app.classification.engine.simulate import Simulation, backtest, empty_histories, simulate
from app.classification.engine.types import INT_FIELDS, Histories, Outcomes, Profile
from tests.classification.engine.support import CUTOFF, HORIZON, POLICY, PROSPECT, fitted, one

NO_OUTCOMES = Outcomes(orders=np.zeros(0, dtype=np.int64), revenue=np.zeros(0))


def _fit(sim, cutoff: float = CUTOFF, horizon: float = HORIZON, policy=POLICY):  # type: ignore[no-untyped-def]
    return fit_model(
        sim.histories(cutoff - horizon),
        sim.outcomes(cutoff - horizon, cutoff),
        sim.histories(cutoff),
        horizon_days=horizon,
        policy=policy,
    )


def _usable(model: PopulationModel) -> None:
    """Any model classifies a buyer and a prospect with sane numbers."""
    customers = [one(), one(**PROSPECT)]
    for h in customers:
        result = classify(h, [Profile()], model, POLICY)[0]
        assert 0.0 < result.churn_probability < 1.0
        assert 0.0 <= result.tier_score <= 1.0
        assert result.expected_orders >= 0.0 and result.expected_revenue >= 0.0
    PopulationModel.from_json(json.loads(json.dumps(model.to_json())))


@pytest.mark.parametrize("size", [0, 1, 15, 150])
def test_small_populations_fall_back_to_priors(size: int) -> None:
    sim = simulate(size, seed=1)
    model = _fit(sim, cutoff=500.0)
    assert model.source == "prior"
    assert not model.calibrated
    assert model.buyers == len(sim.histories(500.0))
    _usable(model)
    result = classify(one(), [Profile()], model, POLICY)[0]
    assert result.reasons[-1].code == "priors"
    assert result.reasons[-1].params == {"buyers": model.buyers}


def test_empty_inputs_and_the_prior_model() -> None:
    model = fit_model(
        empty_histories(), NO_OUTCOMES, empty_histories(), horizon_days=90, policy=POLICY
    )
    assert model.source == "prior" and model.customers == 0
    assert model == replace(prior_model(horizon_days=90, policy=POLICY), notes=model.notes)
    _usable(model)
    assert classify(empty_histories(), [], model, POLICY) == []


def test_degenerate_populations_never_raise() -> None:
    nobody_repeats = simulate(3_000, seed=2, r=0.01, alpha=1e7)
    assert int(nobody_repeats.histories(500.0).order_days.max()) == 1
    model = _fit(nobody_repeats, cutoff=500.0)
    assert model.source == "prior"
    _usable(model)

    sim = simulate(3_000, seed=4)
    current, train = sim.histories(CUTOFF), sim.histories(CUTOFF - HORIZON)
    everyone = Outcomes(orders=np.ones(len(train), dtype=np.int64), revenue=np.ones(len(train)))
    nobody = Outcomes(orders=np.zeros(len(train), dtype=np.int64), revenue=np.zeros(len(train)))
    for outcomes in (everyone, nobody):
        model = fit_model(train, outcomes, current, horizon_days=HORIZON, policy=POLICY)
        assert model.source == "fitted" and not model.calibrated
        _usable(model)

    mismatched = Outcomes(orders=np.zeros(3, dtype=np.int64), revenue=np.zeros(3))
    model = fit_model(train, mismatched, current, horizon_days=HORIZON, policy=POLICY)
    assert not model.calibrated and any("length" in note for note in model.notes)

    columns: dict[str, Any] = {
        name: np.zeros(500, dtype=np.int64) if name in INT_FIELDS else np.full(500, np.nan)
        for name in Histories.__dataclass_fields__
    }
    prospects_only = Histories(**columns)
    model = fit_model(
        prospects_only,
        Outcomes(orders=np.zeros(500, dtype=np.int64), revenue=np.zeros(500)),
        prospects_only,
        horizon_days=HORIZON,
        policy=POLICY,
    )
    assert model.source == "prior"
    _usable(model)


def test_nan_and_negative_garbage_never_raises() -> None:
    sim = simulate(2_000, seed=6)
    current = sim.histories(CUTOFF)
    rng = np.random.default_rng(0)
    spoiled = {}
    for name in Histories.__dataclass_fields__:
        values = getattr(current, name).copy()
        if name not in INT_FIELDS:
            values[rng.uniform(size=values.size) < 0.1] = np.nan
            values[rng.uniform(size=values.size) < 0.05] = -5.0
            values[rng.uniform(size=values.size) < 0.01] = np.inf
        spoiled[name] = values
    bad = Histories(**spoiled)
    model = fit_model(
        bad, sim.outcomes(CUTOFF, CUTOFF + HORIZON), bad, horizon_days=HORIZON, policy=POLICY
    )
    _usable(model)
    results = classify(bad, [Profile()] * len(bad), model, POLICY)
    assert all(0.0 <= r.churn_probability <= 1.0 for r in results)
    assert all(np.isfinite(r.expected_revenue) and r.expected_revenue >= 0 for r in results)


def test_min_population_is_the_policys() -> None:
    sim = simulate(3_000, seed=8)
    strict = _fit(sim, policy=replace(POLICY, min_population=10_000))
    assert strict.source == "prior" and not strict.calibrated
    lenient = _fit(sim, policy=replace(POLICY, min_population=100))
    assert lenient.source == "fitted" and lenient.validated is not None


def test_fit_is_deterministic_and_round_trips_exactly() -> None:
    sim = simulate(5_000, seed=9)
    first, second = _fit(sim), _fit(sim)
    assert json.dumps(first.to_json()) == json.dumps(second.to_json())
    assert first.validated is not None
    again = PopulationModel.from_json(json.loads(json.dumps(first.to_json())))
    assert again == first
    assert json.dumps(again.to_json()) == json.dumps(first.to_json())
    orjson = pytest.importorskip("orjson")
    assert PopulationModel.from_json(orjson.loads(orjson.dumps(first.to_json()))) == first


def test_a_model_of_another_format_is_refused() -> None:
    data = fitted().to_json()
    with pytest.raises(ValueError, match="format"):
        PopulationModel.from_json({**data, "format": 1})
    with pytest.raises(ValueError):
        PopulationModel.from_json({"format": data["format"]})


def test_churn_probability_is_calibrated_on_the_next_horizon() -> None:
    sim = simulate(20_000, seed=5)
    model = _fit(sim)
    # On the engine's own BG/NBD process, whichever candidate validated best answers.
    assert model.source == "fitted" and model.validated is not None
    assert model.answer == model.validated.model
    assert model.validated.customers > 5000
    current = sim.histories(CUTOFF)
    results = classify(current, [Profile()] * len(current), model, POLICY)
    predicted = np.array([r.churn_probability for r in results])
    future = sim.outcomes(CUTOFF, CUTOFF + HORIZON)
    silent = future.orders == 0
    bins = np.minimum((predicted * 10).astype(int), 9)
    checked = 0
    for k in range(10):
        members = bins == k
        if members.sum() >= 300:
            checked += 1
            assert abs(predicted[members].mean() - silent[members].mean()) < 0.05, k
    assert checked >= 6
    assert predicted.mean() == pytest.approx(silent.mean(), abs=0.01)
    expected_orders = sum(r.expected_orders for r in results)
    assert expected_orders == pytest.approx(future.orders.sum(), rel=0.1)
    expected_revenue = sum(r.expected_revenue for r in results)
    assert expected_revenue == pytest.approx(future.revenue.sum(), rel=0.15)


def _with_prospects(h: Histories, count: int, rng: np.random.Generator) -> Histories:
    columns = {}
    for name in Histories.__dataclass_fields__:
        filler = PROSPECT.get(name, 0)
        extra = np.full(count, filler, dtype=np.int64 if name in INT_FIELDS else np.float64)
        if name == "recent_contacts":
            extra = rng.integers(0, 4, count)
        if name == "last_activity_age":
            extra = rng.uniform(1.0, 300.0, count)
        if name == "tenure":
            extra = rng.uniform(300.0, 600.0, count)
        columns[name] = np.concatenate([getattr(h, name), extra])
    return Histories(**columns)


def test_prospects_learn_from_the_cohorts_prospects() -> None:
    rng = np.random.default_rng(1)
    sim = simulate(5_000, seed=10)
    train = _with_prospects(sim.histories(CUTOFF - HORIZON), 2_000, rng)
    outcomes = sim.outcomes(CUTOFF - HORIZON, CUTOFF)
    # Prospects with recent contacts convert far more often.
    contacts = train.recent_contacts[-2_000:]
    converted = rng.uniform(size=2_000) < np.where(contacts > 1, 0.4, 0.05)
    outcomes = Outcomes(
        orders=np.concatenate([outcomes.orders, converted.astype(np.int64)]),
        revenue=np.concatenate([outcomes.revenue, converted * 100.0]),
    )
    current = _with_prospects(sim.histories(CUTOFF), 2_000, rng)
    model = fit_model(train, outcomes, current, horizon_days=HORIZON, policy=POLICY)
    assert model.prospects.churn is not None
    cold = classify(one(**PROSPECT, recent_contacts=0), [Profile()], model, POLICY)[0]
    warm = classify(one(**PROSPECT, recent_contacts=3), [Profile()], model, POLICY)[0]
    assert cold.stage == warm.stage == "prospect"
    assert cold.churn_probability == pytest.approx(0.95, abs=0.04)
    assert warm.churn_probability == pytest.approx(0.6, abs=0.08)
    assert warm.expected_orders > cold.expected_orders > 0


def test_nothing_after_the_cutoff_changes_anything() -> None:
    """Two worlds identical up to T and different after it get identical models and
    classifications as of T."""
    sim = simulate(4_000, seed=13)
    later = sim.times > CUTOFF
    rng = np.random.default_rng(0)
    other = Simulation(
        times=np.where(later, sim.times + rng.uniform(0.0, 50.0, sim.times.shape), sim.times),
        spends=np.where(later, sim.spends * 3.0, sim.spends),
    )
    results = []
    for world in (sim, other):
        data = backtest(world, cutoff=CUTOFF, horizon=HORIZON)
        model = fit_model(
            data.train, data.outcomes, data.current, horizon_days=HORIZON, policy=POLICY
        )
        profiles = [Profile()] * len(data.current)
        results.append((model.to_json(), classify(data.current, profiles, model, POLICY)))
    assert results[0] == results[1]
    futures = [backtest(w, cutoff=CUTOFF, horizon=HORIZON).future for w in (sim, other)]
    assert futures[0].revenue.sum() != futures[1].revenue.sum()


def test_a_young_installation_is_validated_on_a_shorter_window() -> None:
    from app.classification.engine.validation import history_days, training_window

    # Customers acquired over 60 days, observed until day 300; the horizon asked is a
    # year, longer than the whole history: learn from the newest window that fits.
    sim = simulate(6000, seed=11, acquisition_days=60.0, end=700.0)
    cutoff, horizon = 300.0, 365.0
    current = sim.histories(cutoff)
    window = training_window(history_days(current), horizon)
    assert 100.0 <= window < horizon
    model = fit_model(
        sim.histories(cutoff - window),
        sim.outcomes(cutoff - window, cutoff),
        current,
        horizon_days=horizon,
        policy=POLICY,
        window_days=window,
    )
    assert model.source == "fitted" and model.window_days == window
    assert model.validated is not None and model.trained_on > 0
    assert {v.model for v in model.validation} == {
        "bgnbd",
        "bgnbd_platt",
        "calibrated",
        "pareto_nbd",
    }
    assert model.validated.log_loss == min(v.log_loss for v in model.validation)
    assert model.validated.customers > 2000 and model.validated.auc > 0.7
    # Cross-fitted: every cohort buyer is scored once, by a fit that did not see them.
    assert model.validated.customers == model.trained_on
    assert all(v.customers == model.trained_on for v in model.validation)
    # The final map (or none) was chosen on the held-out predictions.
    kind = "none" if model.final_map is None else model.final_map.kind
    assert kind in ("none", "platt", "beta")
    assert {v.model for v in model.map_validation} == {
        f"{model.answer}+{k}" for k in ("none", "platt", "beta")
    }
    assert model.map_validation[0].model == f"{model.answer}+{kind}"
    assert model.map_validation[0].log_loss == min(v.log_loss for v in model.map_validation)
    # The year's forecast is still honest about the year (scored on what followed T).
    results = classify(current, [Profile()] * len(current), model, POLICY)
    predicted = np.array([r.churn_probability for r in results])
    silent = sim.outcomes(cutoff, cutoff + horizon).orders == 0
    assert predicted.mean() == pytest.approx(silent.mean(), abs=0.05)
    # The answer says which model it was and how it validated.
    assert results[0].reasons[-1].code == "model_validated"
    assert results[0].reasons[-1].params["customers"] == model.validated.customers


def test_pareto_nbd_answers_on_a_pareto_nbd_population_and_round_trips() -> None:
    from app.classification.engine.simulate import simulate_pareto_nbd

    # Customers who can leave before their first repeat purchase: BG/NBD's process
    # cannot, so on this population Pareto/NBD should validate best.
    sim = simulate_pareto_nbd(8000, seed=4, r=0.8, alpha=20.0, s=1.5, beta=60.0)
    model = _fit(sim)
    assert model.answer == "pareto_nbd" and model.validated is not None
    assert model.validated.model == "pareto_nbd"
    assert model.validated.log_loss == min(v.log_loss for v in model.validation)
    assert model.pnbd is not None and model.pareto_nbd is not None
    r, alpha, s, beta = model.pareto_nbd
    assert r == pytest.approx(0.8, rel=0.2) and alpha == pytest.approx(20.0, rel=0.25)
    assert s == pytest.approx(1.5, rel=0.3) and beta == pytest.approx(60.0, rel=0.4)
    again = PopulationModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again == model and again.pnbd == model.pnbd
    current = sim.histories(CUTOFF)
    profiles = [Profile()] * len(current)
    results = classify(current, profiles, model, POLICY)
    assert results == classify(current, profiles, again, POLICY)
    # Its probabilities answer, honest about the next horizon.
    predicted = np.array([r.churn_probability for r in results])
    silent = sim.outcomes(CUTOFF, CUTOFF + HORIZON).orders == 0
    assert predicted.mean() == pytest.approx(silent.mean(), abs=0.03)
    reason = results[0].reasons[-1]
    assert reason.code == "model_validated" and str(reason.params["model"]).startswith("Pareto/NBD")
    _usable(model)


def test_a_stored_fit_of_the_previous_format_is_refitted() -> None:
    from app.classification.engine.model import FORMAT

    data = fitted().to_json()
    assert data["format"] == FORMAT == 12 and data["pareto_nbd"] is None
    # Format 11 placed no customer among the population's buyers: its fits are refitted.
    assert data["ranks"]["frequency"]["values"] and data["ranks"]["span"]["values"]
    with pytest.raises(ValueError, match="format"):
        PopulationModel.from_json({**data, "format": 11})
