"""The classification engine: pure functions over NumPy arrays and frozen dataclasses."""

from app.classification.engine.classify import classify
from app.classification.engine.model import PopulationModel, fit_model, prior_model
from app.classification.engine.reasons import render_reason

__all__ = ["PopulationModel", "classify", "fit_model", "prior_model", "render_reason"]
