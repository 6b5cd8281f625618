"""Platt scaling of the BG/NBD logit: recovers a known distortion and keeps the ranking."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from app.classification.engine.btyd import BGNBD
from app.classification.engine.features import btyd_logit
from app.classification.engine.platt import fit_platt, predict_platt
from app.classification.engine.simulate import simulate
from app.classification.engine.summary import summarise

BTYD = BGNBD(r=0.6, alpha=40.0, a=0.8, b=3.0)
HORIZON = 90.0


def test_recovers_a_known_intercept_and_slope() -> None:
    s = summarise(simulate(20_000, seed=3).histories(500.0))
    s_buyers = s  # every simulated customer has an order
    z = btyd_logit(BTYD, s_buyers, HORIZON)
    rng = np.random.default_rng(0)
    # Outcomes from a world where BG/NBD is too sure: the true logit is 0.3 + 0.6 z.
    silent = (rng.uniform(size=z.size) < expit(0.3 + 0.6 * z)).astype(float)
    platt = fit_platt(s_buyers, silent, BTYD, horizon=HORIZON)
    assert platt is not None
    assert platt.intercept == pytest.approx(0.3, abs=0.08)
    assert platt.coef[0] == pytest.approx(0.6, abs=0.05)
    p = predict_platt(platt, s_buyers, BTYD, horizon=HORIZON)
    # Monotone in the BG/NBD logit: the ranking is BG/NBD's.
    order = np.argsort(z)
    assert np.all(np.diff(p[order]) >= -1e-12)
    assert p.mean() == pytest.approx(silent.mean(), abs=0.01)


def test_one_outcome_class_is_not_fitted() -> None:
    s = summarise(simulate(100, seed=1).histories(300.0))
    assert fit_platt(s, np.zeros(s.x.size), BTYD, horizon=HORIZON) is None


def test_a_platt_scaled_model_is_stored_and_reloaded_exactly() -> None:
    import json
    from dataclasses import replace

    from app.classification.engine import PopulationModel
    from app.classification.engine.regression import Glm
    from app.classification.engine.validation import Validation
    from tests.classification.engine.support import fitted

    model = replace(
        fitted(),
        answer="bgnbd_platt",
        calibrator=None,
        platt=Glm(intercept=0.25, coef=(0.75,)),
        validation=(Validation("bgnbd_platt", 100, 60.0, 0.4, 0.8, 0.15, 0.45),),
    )
    again = PopulationModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again == model and again.validated == model.validation[0]
