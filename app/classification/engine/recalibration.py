"""The final map: how far to trust the answering model's P(no order), learned from its
predictions for customers held out of its fit, against what they did.

Two maps, simplest first, both strictly increasing in p so that the ranking the answering
model was chosen for is kept (a step map such as isotonic regression ties customers the
model tells apart, and costs ranking for calibration):
- Platt scaling (Platt 1999): expit(a + b logit p), b >= 0; fixes a model that is too
  sure or too unsure by the same factor everywhere.
- Beta calibration (Kull, Silva Filho & Flach 2017, "Beyond sigmoids", EJS 11(2)):
  expit(c + a log p - b log(1 - p)), a, b >= 0; the two tails are corrected apart, as
  when a model is too sure of its safest customers but about right on the riskiest.

Whether one applies, and which, is decided by two-fold cross-fitting on the held-out
predictions themselves (each map fitted on one half, scored by log-loss on the other,
the halves swapped), against leaving them as they are: the data before T picks it,
never a constant. Every map is non-decreasing in
p, so every monotonicity the answering model has (e.g. in silence) carries over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import logit

from app.classification.engine.regression import fit_glm, response
from app.classification.engine.types import FloatArray, IntArray
from app.classification.engine.validation import Validation, validate

MapKind = Literal["platt", "beta"]
KINDS: tuple[MapKind, ...] = ("platt", "beta")
P_FLOOR = 1e-4
# Fewer held-out customers than this in either outcome class: Platt scaling only (the
# richer map would learn noise).
MIN_CLASS_RICH = 20


@dataclass(frozen=True, slots=True)
class FinalMap:
    kind: MapKind
    intercept: float
    coef: tuple[float, ...]  # platt: (slope,); beta: (a, b)


def _clip(p: FloatArray) -> FloatArray:
    result: FloatArray = np.clip(p, P_FLOOR, 1.0 - P_FLOOR)
    return result


def _beta_columns(p: FloatArray) -> FloatArray:
    q = _clip(p)
    return np.stack([np.log(q), -np.log1p(-q)], axis=1)


def fit_map(kind: MapKind, p: FloatArray, silent: FloatArray) -> FinalMap | None:
    """The map of `kind` from predictions `p` of held-out customers to what they did
    (`silent`, 0/1); None without both outcomes or when the fit fails."""
    if silent.size == 0 or silent.min() == silent.max():
        return None
    if kind == "beta":
        glm = fit_glm(_beta_columns(p), silent, family="logistic", signs=[1, 1], prior_sd=10.0)
    else:
        glm = fit_glm(_logit(p)[:, None], silent, family="logistic", signs=[1], prior_sd=10.0)
    if glm is None:
        return None
    return FinalMap(kind=kind, intercept=glm.intercept, coef=glm.coef)


def apply_map(final: FinalMap, p: FloatArray) -> FloatArray:
    """`p` through the map: non-decreasing in `p` (increasing unless every coefficient
    is zero)."""
    if final.kind == "beta":
        eta = final.intercept + _beta_columns(p) @ np.asarray(final.coef)
    else:
        eta = final.intercept + final.coef[0] * _logit(p)
    return _clip(response(eta, family="logistic"))


def candidates(silent: FloatArray) -> tuple[MapKind, ...]:
    """The maps worth trying: Platt scaling alone when either outcome class is too
    small for beta calibration's extra parameter."""
    silent_count = float(silent.sum())
    if min(silent_count, silent.size - silent_count) < MIN_CLASS_RICH:
        return KINDS[:1]
    return KINDS


def map_halves(size: int) -> tuple[IntArray, IntArray]:
    """Rows to fit a map on and to score it on. The held-out predictions alternate
    between the candidate's two fold fits by row parity (validation.halves), so the
    halves here take rows in pairs: each holds predictions of both fits, as the final
    map is learned from both."""
    rows = np.arange(size, dtype=np.int64)
    first = (rows // 2) % 2 == 0
    return rows[first], rows[~first]


def choose_map(
    p: FloatArray,
    silent: FloatArray,
    *,
    window_days: float,
    name: str,
) -> tuple[FinalMap | None, tuple[Validation, ...]]:
    """The map that validates best by cross-fitted log-loss, refitted on every held-out
    prediction, and each option's figures (named "<name>+<kind>", the chosen one
    first). Leaving the probabilities as they are ("<name>+none", scored on the same
    rows) is the first option, so a map has to earn its place; the simpler option
    wins a tie."""
    fit_rows, check_rows = map_halves(p.size)
    scored: list[tuple[MapKind | None, Validation]] = [
        (None, validate(f"{name}+none", p, silent, window_days))
    ]
    for kind in candidates(silent):
        held_out = np.full(p.size, np.nan)
        for a, b in ((fit_rows, check_rows), (check_rows, fit_rows)):
            part = fit_map(kind, p[a], silent[a])
            if part is not None:
                held_out[b] = apply_map(part, p[b])
        if np.all(np.isfinite(held_out)):
            scored.append((kind, validate(f"{name}+{kind}", held_out, silent, window_days)))
    chosen = min(scored, key=lambda item: item[1].log_loss)
    figures = (chosen[1], *(v for k, v in scored if v is not chosen[1]))
    if chosen[0] is None:
        return None, figures
    return fit_map(chosen[0], p, silent), figures


def _logit(p: FloatArray) -> FloatArray:
    result: FloatArray = logit(_clip(p))
    return result
