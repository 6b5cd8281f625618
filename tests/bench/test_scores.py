from __future__ import annotations

import numpy as np

from bench.scores import calibration_error, chance_calibration_error, stage_targets


def test_an_exactly_right_forecaster_scores_inside_the_chance_band() -> None:
    rng = np.random.default_rng(7)
    p = rng.beta(0.7, 0.7, 2000)
    low, mid, high = chance_calibration_error(p, draws=300)
    assert 0.0 < low < mid < high < 0.1
    inside = 0
    for _ in range(40):
        observed = calibration_error(p, (rng.uniform(size=p.size) < p).astype(float))
        inside += low <= observed <= high
    assert inside >= 30  # about 90% of exactly right forecasts fall inside


def test_a_forecaster_off_by_a_tenth_scores_outside_it() -> None:
    rng = np.random.default_rng(8)
    p = rng.uniform(0.2, 0.8, 2000)
    outcome = (rng.uniform(size=p.size) < p).astype(float)
    _, _, high = chance_calibration_error(p + 0.1, draws=300)
    assert calibration_error(p + 0.1, outcome) > high


def test_the_band_narrows_with_more_customers() -> None:
    rng = np.random.default_rng(9)
    small = chance_calibration_error(rng.uniform(size=500), draws=300)[1]
    large = chance_calibration_error(rng.uniform(size=20_000), draws=300)[1]
    assert large < small / 3


def test_stage_targets_name_each_miss_and_leave_out_empty_stages() -> None:
    stages = np.array(["loyal"] * 4 + ["returning"] * 4 + ["churned"] * 4)
    # loyal 1 of 4 inactive, returning 2 of 4, churned 3 of 4
    silent = np.array([0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0], dtype=float)
    assert stage_targets(stages, silent) == "rising ok, churned >= 70% ok, loyal <= 25% ok"
    silent[8] = 0.0  # churned: 2 of 4, no more than returning
    assert stage_targets(stages, silent) == "rising MISS, churned >= 70% MISS, loyal <= 25% ok"
    kept = stages != "churned"
    assert stage_targets(stages[kept], silent[kept]) == (
        "rising ok, churned >= 70% nobody in the stage, loyal <= 25% ok"
    )
