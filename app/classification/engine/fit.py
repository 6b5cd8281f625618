"""Fitting the population model: BG/NBD and Gamma-Gamma on the population as of T (and
Pareto/NBD when it answers); the answering model chosen on the cohort as of T - window
and what it did up to T (the newest leak-free window, see validation.py); and the tables
that place a customer in the population.

Everything handed in is at or before T, so nothing after T can leak into the model.
Fitting never raises: too little or degenerate data falls back to priors, and the
model records it (`source`, `notes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from app.classification.engine.btyd import BGNBD, PRIOR, fit_bgnbd
from app.classification.engine.calibration import (
    FIT_SAMPLE,
    BuyerCalibrator,
    fit_buyers,
    fit_prospects,
    predict_buyers,
    prior_prospects,
    stride,
)
from app.classification.engine.estimate import estimate
from app.classification.engine.features import Ranks, population_ranks
from app.classification.engine.model import Answer, PopulationModel
from app.classification.engine.pareto_nbd import ParetoNBD, fit_pareto_nbd
from app.classification.engine.platt import fit_platt, predict_platt
from app.classification.engine.recalibration import FinalMap, choose_map
from app.classification.engine.regression import Glm
from app.classification.engine.segments import RfmCuts, quintile_cuts
from app.classification.engine.spend import GammaGamma, fit_gamma_gamma
from app.classification.engine.summary import BoolArray, Summary, summarise, take
from app.classification.engine.tiers import value_of, value_table
from app.classification.engine.types import EnginePolicy, FloatArray, Histories, Outcomes
from app.classification.engine.validation import Validation, best, halves, validate

# Hard floors under the policy's min_population: below these no fit is meaningful.
MIN_BUYERS = 20
MIN_REPEATERS = 10
# At most this many customers (a fixed stride) go into the Pareto/NBD fit: its
# likelihood costs about ten times BG/NBD's per row (4.3 s against 0.4 s on 25,000
# simulated buyers), and four parameters are pinned down well by 10,000 customers.
PNBD_SAMPLE = 10_000
# Typical days between order days when the population cannot tell.
PRIOR_INTERVAL = 60.0
# Median value of a customer with an order when there is no population to measure it
# (base currency): only the tier score's stand-in uses it.
PRIOR_TYPICAL_VALUE = 1000.0


def _rows(
    s: Summary, mask: BoolArray, limit: int = FIT_SAMPLE
) -> tuple[FloatArray, FloatArray, FloatArray]:
    rows = np.flatnonzero(mask)
    rows = rows[:: stride(rows.size, limit)]
    return s.x[rows], s.t_x[rows], s.T[rows]


def _fit_btyd(s: Summary) -> BGNBD | None:
    return fit_bgnbd(*_rows(s, s.buyer))


def _fit_pnbd(s: Summary) -> ParetoNBD | None:
    return fit_pareto_nbd(*_rows(s, s.buyer, PNBD_SAMPLE))


def typical_interval(s: Summary) -> float:
    """Median over repeat buyers of their mean days between order days."""
    repeat = s.x > 0
    if int(repeat.sum()) < MIN_REPEATERS:
        return PRIOR_INTERVAL
    value = float(np.median(s.t_x[repeat] / s.x[repeat]))
    return value if math.isfinite(value) and value > 0 else PRIOR_INTERVAL


def _enough(s: Summary, policy: EnginePolicy) -> bool:
    """Enough customers with an order (the policy's minimum) and enough repeat buyers
    for BG/NBD to learn from."""
    buyers = int(s.buyer.sum())
    repeaters = int((s.x > 0).sum())
    return buyers >= max(policy.min_population, MIN_BUYERS) and repeaters >= MIN_REPEATERS


def prior_model(
    *, horizon_days: float, policy: EnginePolicy, customers: int = 0, buyers: int = 0
) -> PopulationModel:
    """The model for an empty or tiny population: priors throughout."""
    return PopulationModel(
        horizon_days=float(horizon_days),
        source="prior",
        customers=int(customers),
        buyers=int(buyers),
        repeaters=0,
        trained_on=0,
        bgnbd=PRIOR,
        spend=None,
        mean_order_value=0.0,
        refund_share=0.0,
        orders_per_day=1.0,
        typical_interval=PRIOR_INTERVAL,
        calibrator=None,
        prospects=prior_prospects(),
        value_table=None,
        typical_value=PRIOR_TYPICAL_VALUE,
        rfm=RfmCuts(),
        median_order_days=2.0,
        median_order_value=0.0,
        notes=("no population: priors",),
    )


def fit_model(
    train: Histories,
    outcomes: Outcomes,
    current: Histories,
    *,
    horizon_days: float,
    policy: EnginePolicy,
    window_days: float | None = None,
) -> PopulationModel:
    """Learn the population as of T from `current`, validated and calibrated on `train`
    -> `outcomes`: the same customers as of T - window and what they did up to T (the
    window is the horizon unless given shorter, see validation.training_window).
    Deterministic."""
    horizon = float(horizon_days) if math.isfinite(horizon_days) and horizon_days > 0 else 1.0
    window = horizon if window_days is None else float(window_days)
    fallback = prior_model(
        horizon_days=horizon,
        policy=policy,
        customers=len(current),
        buyers=int(np.count_nonzero(current.orders > 0)),
    )
    try:
        model = _fit(train, outcomes, current, horizon=horizon, window=window, policy=policy)
    # Deliberately broad: a population the optimisers choke on must not take the
    # classification service down; priors and a note are the honest answer.
    except Exception as error:
        return replace(fallback, notes=(f"fit failed ({type(error).__name__}): priors",))
    if not _finite(model):
        return replace(fallback, notes=("fit produced non-finite numbers: priors",))
    return model


@dataclass(frozen=True, slots=True)
class _Answer:
    """What answers for customers with an order, and how the candidates validated."""

    name: Answer
    calibrator: BuyerCalibrator | None
    platt: Glm | None
    trained_on: int
    validation: tuple[Validation, ...]
    final_map: FinalMap | None = None
    map_validation: tuple[Validation, ...] = ()
    # The Pareto/NBD fitted on the cohort, kept as the fallback when it answers and the
    # fit as of T fails.
    pnbd_then: ParetoNBD | None = None


_PLAIN = _Answer(name="bgnbd", calibrator=None, platt=None, trained_on=0, validation=())


def _fit(
    train: Histories,
    outcomes: Outcomes,
    current: Histories,
    *,
    horizon: float,
    window: float,
    policy: EnginePolicy,
) -> PopulationModel:
    notes: list[str] = []
    s = summarise(current)
    buyers = int(s.buyer.sum())
    repeaters = int((s.x > 0).sum())
    base = prior_model(horizon_days=horizon, policy=policy, customers=len(current), buyers=buyers)
    btyd = _fit_btyd(s) if _enough(s, policy) else None
    if btyd is None:
        notes.append(f"{buyers} customers with orders, {repeaters} repeat: BG/NBD priors")

    answer, prospects = _PLAIN, prior_prospects()
    if len(train) != outcomes.orders.shape[0]:
        notes.append("cohort and outcomes differ in length: not calibrated")
    elif len(train) and window > 0:
        s_train = summarise(train)
        orders = np.maximum(outcomes.orders.astype(np.float64), 0.0)
        prospects = fit_prospects(s_train, orders)
        if btyd is not None:
            answer = _choose(s_train, orders, window=window, policy=policy)
        if not answer.validation:
            notes.append("cohort too small or degenerate: not validated")
    elif window <= 0:
        notes.append("history too short for a training window: not calibrated")

    pnbd = _answering_pnbd(s, answer) if btyd is not None else None
    if answer.name == "pareto_nbd" and pnbd is None:
        answer = replace(_PLAIN, validation=answer.validation)
        notes.append("Pareto/NBD validated best but could not be fitted: BG/NBD answers")
    spend = fit_gamma_gamma(*_spend_rows(s))
    revenue = float(s.revenue.sum())
    model = replace(
        base,
        source="fitted" if btyd is not None else "prior",
        answer=answer.name if btyd is not None else "prior",
        repeaters=repeaters,
        trained_on=answer.trained_on,
        window_days=window if answer.validation else 0.0,
        validation=answer.validation,
        bgnbd=btyd.params if btyd is not None else PRIOR,
        spend=(spend.p, spend.q, spend.gamma) if isinstance(spend, GammaGamma) else None,
        mean_order_value=float(s.revenue.sum() / s.orders.sum()) if buyers else 0.0,
        refund_share=min(float(s.refunds.sum()) / revenue, 1.0) if revenue > 0 else 0.0,
        orders_per_day=float(s.orders.sum() / s.order_days.sum()) if buyers else 1.0,
        typical_interval=typical_interval(s),
        calibrator=answer.calibrator,
        ranks=population_ranks(s) if answer.calibrator is not None else None,
        platt=answer.platt,
        final_map=answer.final_map if btyd is not None else None,
        map_validation=answer.map_validation if btyd is not None else (),
        pareto_nbd=pnbd.params if pnbd is not None else None,
        prospects=prospects,
        notes=tuple(notes),
    )
    return _with_tables(model, s, policy)


def _answering_pnbd(s: Summary, answer: _Answer) -> ParetoNBD | None:
    """Pareto/NBD as of T when it answers, refitted on the population as BG/NBD is; the
    cohort's fit when that fails."""
    if answer.name != "pareto_nbd":
        return None
    return _fit_pnbd(s) or answer.pnbd_then


def _spend_rows(s: Summary) -> tuple[FloatArray, FloatArray]:
    rows = np.flatnonzero(s.buyer)
    rows = rows[:: stride(rows.size)]
    return s.mean_spend[rows], s.orders[rows]


def _candidates(
    fit_part: Summary,
    fit_orders: FloatArray,
    check: Summary,
    btyd_then: BGNBD,
    pnbd_then: ParetoNBD | None,
    *,
    window: float,
    interval: float,
    ranks: Ranks,
) -> dict[str, FloatArray]:
    """Each candidate fitted on `fit_part` and its P(no order in the window) for `check`,
    simplest first: BG/NBD as fitted on the cohort, BG/NBD with Platt scaling, the
    calibration layer and Pareto/NBD as fitted on the cohort."""
    result = {"bgnbd": btyd_then.p_no_purchase(check.x, check.t_x, check.T, window)}
    silent = (fit_orders == 0).astype(np.float64)
    platt = fit_platt(fit_part, silent, btyd_then, horizon=window)
    if platt is not None:
        result["bgnbd_platt"] = predict_platt(platt, check, btyd_then, horizon=window)
    layer = fit_buyers(
        fit_part,
        fit_orders,
        btyd_then,
        horizon=window,
        population_interval=interval,
        ranks=ranks,
    )
    if layer is not None:
        result["calibrated"], _ = predict_buyers(
            layer, check, btyd_then, horizon=window, population_interval=interval, ranks=ranks
        )
    if pnbd_then is not None:
        result["pareto_nbd"] = pnbd_then.p_no_purchase(check.x, check.t_x, check.T, window)
    return result


def _choose(
    s_train: Summary, orders: FloatArray, *, window: float, policy: EnginePolicy
) -> _Answer:
    """Score each candidate by two-fold cross-fitting on the cohort's buyers (fitted on
    one half, predicted on the other, then the halves swapped), keep the best by
    log-loss over every held-out prediction and refit it on the whole cohort.

    The BG/NBD the candidates build on, and the Pareto/NBD candidate, are fitted on the
    cohort as of T - window itself (without its outcomes), so nothing they see comes
    from after T - window. A candidate that cannot be fitted
    on either half is not scored.
    """
    if not _enough(s_train, policy):
        return _PLAIN
    btyd_then = _fit_btyd(s_train)
    if btyd_then is None:
        return _PLAIN
    rows = np.flatnonzero(s_train.buyer)
    rows = rows[:: stride(rows.size)]
    part = take(s_train, rows)
    cohort_orders = orders[rows]
    silent = (cohort_orders == 0).astype(np.float64)
    interval = typical_interval(s_train)
    ranks = population_ranks(s_train)
    pnbd_then = _fit_pnbd(s_train)
    held_out: dict[str, FloatArray] = {}
    seen: dict[str, int] = {}
    for fit_rows, check_rows in (halves(rows.size), halves(rows.size)[::-1]):
        predicted = _candidates(
            take(part, fit_rows),
            cohort_orders[fit_rows],
            take(part, check_rows),
            btyd_then,
            pnbd_then,
            window=window,
            interval=interval,
            ranks=ranks,
        )
        for name, p in predicted.items():
            held_out.setdefault(name, np.full(rows.size, np.nan))[check_rows] = p
            seen[name] = seen.get(name, 0) + 1
    scored = [validate(name, p, silent, window) for name, p in held_out.items() if seen[name] == 2]
    if not scored:
        return _PLAIN
    chosen = best(scored)
    validation = (chosen, *(v for v in scored if v is not chosen))
    # The final map is learned from the chosen candidate's held-out predictions: how
    # far to trust its probabilities on customers it was not fitted on.
    final_map, maps = choose_map(
        held_out[chosen.model], silent, window_days=window, name=chosen.model
    )
    if chosen.model == "bgnbd_platt":
        final_platt = fit_platt(part, silent, btyd_then, horizon=window)
        if final_platt is not None:
            return _Answer("bgnbd_platt", None, final_platt, rows.size, validation, final_map, maps)
    if chosen.model == "calibrated":
        calibrator = fit_buyers(
            part,
            cohort_orders,
            btyd_then,
            horizon=window,
            population_interval=interval,
            ranks=ranks,
        )
        if calibrator is not None:
            return _Answer("calibrated", calibrator, None, rows.size, validation, final_map, maps)
    if chosen.model == "pareto_nbd" and pnbd_then is not None:
        return _Answer("pareto_nbd", None, None, rows.size, validation, final_map, maps, pnbd_then)
    if chosen.model != "bgnbd":
        return replace(_PLAIN, validation=validation)
    return replace(_PLAIN, validation=validation, final_map=final_map, map_validation=maps)


def _with_tables(model: PopulationModel, s: Summary, policy: EnginePolicy) -> PopulationModel:
    """Value, RFM and median tables of the customers with an order, computed with the
    final model so that classify scores customers exactly as the table was built."""
    if not bool(s.buyer.any()):
        return model
    rows = np.flatnonzero(s.buyer)
    values = value_of(s, estimate(s, model).revenue, policy.tier)[rows]
    repeat = s.x > 0
    typical = float(np.median(values))
    return replace(
        model,
        value_table=value_table(values),
        typical_value=typical if typical > 0 else PRIOR_TYPICAL_VALUE,
        rfm=RfmCuts(
            recency=quintile_cuts(s.recency[rows]),
            frequency=quintile_cuts(s.order_days[rows]),
            monetary=quintile_cuts(s.net[rows]),
        ),
        median_order_days=float(np.median(s.order_days[repeat])) if repeat.any() else 2.0,
        median_order_value=float(np.median(s.mean_spend[rows])),
    )


def _finite(model: PopulationModel) -> bool:
    """Every number in the model is finite (JSON has no NaN or infinity)."""
    stack: list[object] = [model.to_json()]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return False
    return True
