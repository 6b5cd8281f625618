"""The newest leak-free window, the held-out split, the figures and the choice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.classification.engine.simulate import simulate
from app.classification.engine.validation import (
    MIN_WINDOW_DAYS,
    Validation,
    auc,
    best,
    halves,
    history_days,
    training_window,
    validate,
)


def test_the_window_is_the_horizon_when_the_history_holds_two() -> None:
    assert training_window(400.0, 180.0) == 180.0
    assert training_window(360.0, 180.0) == 180.0


def test_a_young_installation_learns_from_a_shorter_window() -> None:
    # Grocery-like: a year of history and a year's horizon: half the history.
    assert training_window(365.0, 364.0) == 182.0
    assert training_window(273.0, 364.0) == 136.0
    assert training_window(2 * MIN_WINDOW_DAYS - 1, 90.0) == 0.0
    assert training_window(float("nan"), 90.0) == 0.0


def test_history_is_the_oldest_first_order() -> None:
    sim = simulate(200, seed=1)
    h = sim.histories(400.0)
    assert history_days(h) == pytest.approx(float(np.nanmax(h.first_order_age)))


def test_halves_are_disjoint_and_cover_every_row() -> None:
    fit, check = halves(7)
    assert fit.tolist() == [0, 2, 4, 6] and check.tolist() == [1, 3, 5]


def _pairwise_auc(p: np.ndarray, label: np.ndarray) -> float:
    """The definition: P(score of a positive > score of a negative), ties half."""
    pos, neg = p[label > 0], p[label == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (pos.size * neg.size))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=60).filter(
        lambda rows: 0 < sum(b for _, b in rows) < len(rows)
    )
)
def test_auc_matches_its_pairwise_definition(rows: list[tuple[int, bool]]) -> None:
    p = np.array([v / 5 for v, _ in rows])
    label = np.array([float(b) for _, b in rows])
    assert auc(p, label) == pytest.approx(_pairwise_auc(p, label))


def test_figures_of_a_perfect_and_a_useless_forecast() -> None:
    label = np.array([0.0, 0.0, 1.0, 1.0])
    sharp = validate("a", np.array([0.01, 0.02, 0.98, 0.99]), label, 30.0)
    flat = validate("b", np.full(4, 0.5), label, 30.0)
    assert sharp.auc == 1.0 and flat.auc == 0.5
    assert sharp.brier < 0.001 and flat.brier == 0.25
    assert flat.log_loss == pytest.approx(np.log(2.0), abs=1e-6)
    assert sharp.customers == 4 and sharp.silent_share == 0.5 and sharp.window_days == 30.0
    assert best([flat, sharp]) is sharp
    assert auc(np.array([0.2, 0.3]), np.array([1.0, 1.0])) == 0.5


def test_ties_go_to_the_earlier_simpler_candidate() -> None:
    a = Validation("bgnbd", 10, 30.0, 0.5, 0.8, 0.1, 0.3)
    b = Validation("calibrated", 10, 30.0, 0.5, 0.8, 0.1, 0.3)
    assert best([a, b]) is a
