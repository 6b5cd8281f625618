"""The classification engine: pure functions over NumPy arrays and frozen dataclasses.

`fit_model` learns a PopulationModel from the population as of a cut-off T (and the
cohort as of T - horizon with what it did up to T); `classify` places customers in it.
Imports only the standard library, NumPy and SciPy.
"""

from app.classification.engine.classify import classify
from app.classification.engine.fit import fit_model, prior_model
from app.classification.engine.model import PopulationModel
from app.classification.engine.reasons import render as render_reason

__all__ = ["PopulationModel", "classify", "fit_model", "prior_model", "render_reason"]
