"""The population model: everything learned from all customers as of a cut-off, once.

Plain numbers only, so the service can store it as JSON and reload it exactly (Python's
and orjson's float representations round-trip). `fit.py` makes one; `classify` uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Literal

from app.classification.engine.btyd import BGNBD
from app.classification.engine.calibration import BuyerCalibrator, ProspectCalibrator
from app.classification.engine.features import Ranks
from app.classification.engine.pareto_nbd import ParetoNBD
from app.classification.engine.recalibration import KINDS, FinalMap
from app.classification.engine.regression import Glm
from app.classification.engine.segments import Population, RfmCuts
from app.classification.engine.spend import GammaGamma, SpendFallback, SpendModel
from app.classification.engine.tiers import ValueTable
from app.classification.engine.validation import Validation

# The engine's model version, stored in every fit: bumped whenever a stored model's
# meaning or shape changes, so a fit of another version is refitted, never reused.
FORMAT = 12

Source = Literal["fitted", "prior"]
# Which model answers for customers with an order: BG/NBD as fitted, BG/NBD with Platt
# scaling, the calibration layer, Pareto/NBD as fitted, or priors.
Answer = Literal["prior", "bgnbd", "bgnbd_platt", "calibrated", "pareto_nbd"]


@dataclass(frozen=True, slots=True)
class PopulationModel:
    horizon_days: float
    source: Source  # "fitted": BG/NBD learned from the population; "prior": too little data
    customers: int  # customers in the population as of T
    buyers: int  # of whom with an order
    repeaters: int  # of whom with orders on two days or more
    trained_on: int  # cohort buyers the answering model learned from (0: not calibrated)
    bgnbd: tuple[float, float, float, float]  # r, alpha (days), a, b
    spend: tuple[float, float, float] | None  # Gamma-Gamma p, q, gamma; None: the fallback
    mean_order_value: float  # gross per order, population; 0 when unknown
    refund_share: float  # share of the population's revenue refunded
    orders_per_day: float  # orders per order day, population
    typical_interval: float  # typical days between order days, population
    calibrator: BuyerCalibrator | None
    prospects: ProspectCalibrator
    value_table: ValueTable | None  # the tier score's empirical CDF
    typical_value: float  # median value score of customers with an order
    rfm: RfmCuts
    median_order_days: float  # among repeat buyers
    median_order_value: float  # gross per order, among buyers
    answer: Answer = "prior"
    platt: Glm | None = None  # Platt scaling of the BG/NBD logit, when that answers
    # The answering model's P(no order) recalibrated (Platt or beta, whichever
    # cross-validated best on its held-out predictions on the newest window); applied last.
    final_map: FinalMap | None = None
    window_days: float = 0.0  # length of the window validated and calibrated on
    # The candidates' held-out figures on that window, the answering one first.
    validation: tuple[Validation, ...] = ()
    # The final maps' cross-fitted figures on those held-out predictions, the chosen first.
    map_validation: tuple[Validation, ...] = ()
    # Pareto/NBD r, alpha (days), s, beta (days) fitted as of T, when it answers.
    pareto_nbd: tuple[float, float, float, float] | None = None
    notes: tuple[str, ...] = ()
    # The population's buyers as of T, for the calibration layer's rank features.
    ranks: Ranks | None = None
    format: int = FORMAT

    @property
    def btyd(self) -> BGNBD:
        return BGNBD(*self.bgnbd)

    @property
    def pnbd(self) -> ParetoNBD | None:
        """The Pareto/NBD that answers for customers with an order, if it does."""
        if self.answer != "pareto_nbd" or self.pareto_nbd is None:
            return None
        return ParetoNBD(*self.pareto_nbd)

    @property
    def spend_model(self) -> SpendModel:
        if self.spend is None:
            return SpendFallback(mean=self.mean_order_value)
        return GammaGamma(*self.spend)

    @property
    def calibrated(self) -> bool:
        return self.calibrator is not None or self.platt is not None or self.final_map is not None

    @property
    def validated(self) -> Validation | None:
        """The answering model's held-out figures, if it was validated."""
        return self.validation[0] if self.validation else None

    @property
    def population(self) -> Population:
        return Population(
            cuts=self.rfm,
            median_order_days=self.median_order_days,
            median_order_value=self.median_order_value,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (nested dicts, lists, finite floats, ints, strings)."""
        result: dict[str, Any] = _plain(self)
        return result

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PopulationModel:
        """The model `to_json` produced, exactly. Raises ValueError for a model stored in
        another format: it has to be refitted."""
        if not isinstance(data, dict):
            raise ValueError("not a population model: not an object")
        if data.get("format") != FORMAT:
            raise ValueError(f"population model format {data.get('format')!r}, need {FORMAT}")
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        try:
            values.update(
                bgnbd=tuple(data["bgnbd"]),
                spend=None if data["spend"] is None else tuple(data["spend"]),
                calibrator=_buyer_calibrator(data["calibrator"]),
                prospects=_prospect_calibrator(data["prospects"]),
                value_table=_table(data["value_table"]),
                rfm=RfmCuts(**{k: tuple(v) for k, v in data["rfm"].items()}),
                platt=_glm(data.get("platt")),
                final_map=_final_map(data.get("final_map")),
                validation=tuple(Validation(**v) for v in data.get("validation", ())),
                map_validation=tuple(Validation(**v) for v in data.get("map_validation", ())),
                pareto_nbd=None if data.get("pareto_nbd") is None else tuple(data["pareto_nbd"]),
                notes=tuple(data.get("notes", ())),
                ranks=None
                if data.get("ranks") is None
                else Ranks(
                    frequency=_table(data["ranks"]["frequency"]),
                    span=_table(data["ranks"]["span"]),
                ),
            )
            return cls(**values)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a population model: {error}") from error


def _plain(value: Any) -> Any:
    """Dataclasses as dicts of their constructor fields, tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.init}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _table(data: dict[str, Any] | None) -> ValueTable | None:
    if data is None:
        return None
    return ValueTable(values=tuple(data["values"]), ranks=tuple(data["ranks"]))


def _glm(data: dict[str, Any] | None) -> Glm | None:
    if data is None:
        return None
    return Glm(intercept=data["intercept"], coef=tuple(data["coef"]))


def _final_map(data: dict[str, Any] | None) -> FinalMap | None:
    if data is None:
        return None
    if data["kind"] not in KINDS:
        raise ValueError(f"unknown final map {data['kind']!r}")
    return FinalMap(
        kind=data["kind"],
        intercept=data["intercept"],
        coef=tuple(data["coef"]),
    )


def _buyer_calibrator(data: dict[str, Any] | None) -> BuyerCalibrator | None:
    if data is None:
        return None
    churn, count = _glm(data["churn"]), _glm(data["count"])
    if churn is None or count is None:
        raise ValueError("a calibrator needs both models")
    return BuyerCalibrator(
        knots=tuple(data["knots"]),
        silence_knots=tuple(data["silence_knots"]),
        churn=churn,
        count=count,
        ranges=tuple((float(lo), float(hi)) for lo, hi in data["ranges"]),
    )


def _prospect_calibrator(data: dict[str, Any]) -> ProspectCalibrator:
    return ProspectCalibrator(
        silent_rate=data["silent_rate"],
        orders_if_buying=data["orders_if_buying"],
        churn=_glm(data["churn"]),
        count=_glm(data["count"]),
    )
