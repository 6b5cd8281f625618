"""The final maps (Platt, beta): each recovers a distortion of its own shape, keeps the
order of the probabilities, and the one that cross-validates best is chosen, or none."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit

from app.classification.engine import PopulationModel
from app.classification.engine.recalibration import (
    KINDS,
    P_FLOOR,
    FinalMap,
    apply_map,
    candidates,
    choose_map,
    fit_map,
    map_halves,
)
from tests.classification.engine.support import fitted


def _outcomes(true_p: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=true_p.size) < true_p).astype(float)


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def test_platt_recovers_overconfidence_and_keeps_the_order() -> None:
    rng = np.random.default_rng(5)
    # A model twice as sure as it should be: its logit is twice the true one, shifted.
    true_logit = rng.normal(0.0, 1.5, size=40_000)
    silent = _outcomes(expit(true_logit), seed=6)
    p_model = expit(2.0 * true_logit - 0.5)
    final = fit_map("platt", p_model, silent)
    assert final is not None and final.kind == "platt"
    assert final.coef[0] == pytest.approx(0.5, abs=0.03)
    assert final.intercept == pytest.approx(0.25, abs=0.05)
    mapped = apply_map(final, p_model)
    order = np.argsort(p_model)
    assert np.all(np.diff(mapped[order]) >= -1e-12)
    assert np.mean((mapped - silent) ** 2) < np.mean((p_model - silent) ** 2)


def test_beta_recovers_a_distortion_of_its_own_family() -> None:
    # Kull et al.'s map with a = 0.5, b = 2: the safe tail is too sure, the risky one not.
    p_model = np.random.default_rng(7).uniform(0.001, 0.999, size=60_000)
    true_p = expit(-0.4 + 0.5 * np.log(p_model) - 2.0 * np.log1p(-p_model))
    silent = _outcomes(true_p, seed=8)
    final = fit_map("beta", p_model, silent)
    assert final is not None and final.kind == "beta"
    assert final.coef[0] == pytest.approx(0.5, abs=0.08)
    assert final.coef[1] == pytest.approx(2.0, abs=0.15)
    assert final.intercept == pytest.approx(-0.4, abs=0.15)
    platt = fit_map("platt", p_model, silent)
    assert platt is not None
    assert _log_loss(apply_map(final, p_model), silent) < _log_loss(
        apply_map(platt, p_model), silent
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_map_needs_both_outcomes(kind: str) -> None:
    assert fit_map(kind, np.linspace(0.1, 0.9, 50), np.ones(50)) is None  # type: ignore[arg-type]


def test_the_choice_follows_the_held_out_figures() -> None:
    p_model = np.random.default_rng(11).uniform(0.001, 0.999, size=20_000)
    true_p = expit(0.3 + 0.4 * np.log(p_model) - 2.5 * np.log1p(-p_model))
    silent = _outcomes(true_p, seed=12)
    final, figures = choose_map(p_model, silent, window_days=90.0, name="m")
    assert final is not None and final.kind == "beta"
    assert figures[0].model == "m+beta"
    assert {v.model for v in figures} == {"m+none", *(f"m+{k}" for k in KINDS)}
    assert figures[0].log_loss == min(v.log_loss for v in figures)
    assert all(v.customers == p_model.size for v in figures)
    again = choose_map(p_model, silent, window_days=90.0, name="m")
    assert again == (final, figures)


def test_a_map_has_to_earn_its_place() -> None:
    # Probabilities that are already right: leaving them alone is scored like any map,
    # and wins on most samples (a map can only win by the noise of one).
    left_alone = 0
    for seed in range(12):
        p_model = np.random.default_rng(seed).uniform(0.01, 0.99, size=4_000)
        silent = _outcomes(p_model, seed=seed + 100)
        final, figures = choose_map(p_model, silent, window_days=90.0, name="m")
        none = next(v for v in figures if v.model == "m+none")
        assert none.log_loss == pytest.approx(_log_loss(p_model, silent), abs=1e-6)
        assert (final is None) == (figures[0] is none)
        left_alone += final is None
    assert left_alone >= 7


def test_the_map_halves_mix_both_fold_fits() -> None:
    first, second = map_halves(10)
    assert first.tolist() == [0, 1, 4, 5, 8, 9] and second.tolist() == [2, 3, 6, 7]
    # Each half holds rows of both parities, i.e. predictions of both fold fits.
    for half in (first, second):
        assert {int(r) % 2 for r in half} == {0, 1}


def test_beta_needs_enough_of_each_outcome() -> None:
    assert candidates(np.r_[np.ones(10), np.zeros(500)]) == ("platt",)
    assert candidates(np.r_[np.ones(100), np.zeros(500)]) == KINDS


@pytest.mark.parametrize(
    "final",
    [
        FinalMap("platt", intercept=0.1, coef=(0.9,)),
        FinalMap("beta", intercept=-0.2, coef=(0.6, 1.4)),
    ],
)
def test_each_map_is_stored_and_reloaded_exactly(final: FinalMap) -> None:
    model = replace(fitted(), final_map=final)
    again = PopulationModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again == model


def test_an_unknown_map_is_refused() -> None:
    data = replace(fitted(), final_map=FinalMap("platt", intercept=0.0, coef=(1.0,))).to_json()
    data["final_map"]["kind"] = "isotonic"
    with pytest.raises(ValueError, match="final map"):
        PopulationModel.from_json(data)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 10_000),
    size=st.integers(40, 400),
)
def test_every_fitted_map_is_monotone_and_in_range(kind: str, seed: int, size: int) -> None:
    rng = np.random.default_rng(seed)
    p_model = expit(rng.normal(0.0, 3.0, size=size))
    silent = _outcomes(expit(logit(p_model) * rng.uniform(0.2, 2.0)), seed=seed + 1)
    final = fit_map(kind, p_model, silent)  # type: ignore[arg-type]
    if final is None:
        assert silent.min() == silent.max()
        return
    grid = np.linspace(0.0, 1.0, 501)
    mapped = apply_map(final, grid)
    assert np.all(np.diff(mapped) >= -1e-12)
    assert np.all((mapped >= P_FLOOR) & (mapped <= 1.0 - P_FLOOR))


def test_the_reason_names_the_final_map() -> None:
    from app.classification.engine.classify import model_reason

    model = replace(fitted(), final_map=FinalMap("beta", intercept=0.0, coef=(1.0, 1.0)))
    reason = model_reason(model)
    assert reason is not None
    assert str(reason.params["model"]).endswith(", beta-recalibrated")


def test_the_answer_names_the_final_map_and_each_maps_figures() -> None:
    from datetime import UTC, datetime

    from app.classification.service import _model_out

    model = fitted()
    as_of = datetime(2026, 3, 1, tzinfo=UTC)
    shown = _model_out(model, as_of)["validation"]
    assert shown is not None
    expected = model.final_map.kind if model.final_map is not None else "none"
    assert shown["final_map"] == expected
    assert set(shown["maps"]) == {v.model for v in model.map_validation}
    beta = replace(model, final_map=FinalMap("beta", intercept=0.0, coef=(1.0, 1.0)))
    assert _model_out(beta, as_of)["validation"]["final_map"] == "beta"
