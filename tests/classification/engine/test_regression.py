"""Linear predictors over feature columns: one matrix product for a small batch, one
column at a time for a large one, with or without bounds on the columns."""

from __future__ import annotations

import numpy as np
import pytest

from app.classification.engine.regression import _SMALL_BATCH, Glm, linear_many

MODELS = (Glm(intercept=0.5, coef=(1.0, -2.0, 0.0)), Glm(intercept=-1.0, coef=(0.0, 0.5, 3.0)))
BOUNDS = ((-1.0, 1.0), (0.0, 2.0), (-5.0, 5.0))


def _columns(size: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, 3.0, size) for _ in range(3)]


@pytest.mark.parametrize("bounds", [(), BOUNDS])
def test_small_and_large_batches_agree(bounds: tuple[tuple[float, float], ...]) -> None:
    large = _columns(_SMALL_BATCH + 10, seed=1)
    small = [c[:5] for c in large]
    at_once = linear_many(MODELS, small, 5, bounds=bounds)
    by_column = linear_many(MODELS, large, _SMALL_BATCH + 10, bounds=bounds)
    for a, b in zip(at_once, by_column, strict=True):
        np.testing.assert_allclose(a, b[:5], rtol=1e-12)


def test_bounds_hold_each_column_to_its_range() -> None:
    columns = _columns(200, seed=2)
    held = linear_many(MODELS, columns, 200, bounds=BOUNDS)
    clipped = [np.clip(c, lo, hi) for c, (lo, hi) in zip(columns, BOUNDS, strict=True)]
    expected = linear_many(MODELS, clipped, 200)
    for a, b in zip(held, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # A value past a bound predicts as the bound itself does.
    far = [np.array([100.0]), np.array([-100.0]), np.array([0.0])]
    edge = [np.array([1.0]), np.array([0.0]), np.array([0.0])]
    assert linear_many(MODELS, far, 1, bounds=BOUNDS)[0][0] == pytest.approx(
        linear_many(MODELS, edge, 1)[0][0]
    )
