"""The classification policy: one JSON document, validated whole, versioned."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.core.types import CountryCode, CurrencyCode, LineText, Money

TIERS = ("high", "mid", "low")
STAGES = ("prospect", "new", "returning", "loyal", "at_risk", "churned")
LANGUAGES = ("en", "zh-CN")

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
Label = Annotated[LineText, StringConstraints(min_length=1, max_length=200)]
Action = Annotated[LineText, StringConstraints(min_length=1, max_length=500)]
# Absolute tier cut-offs are amounts in the base currency: bounded like amounts.
Cutoff = Annotated[Decimal, Field(ge=0, lt=Decimal("1e15"), allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TierPolicy(_Strict):
    method: Literal["percentile", "absolute"] = Field(
        default="percentile",
        description="`percentile`: high/mid are value-score cut-offs in (0, 1]; "
        "`absolute`: amounts of value in the base currency.",
    )
    high: Cutoff = Decimal("0.8")
    mid: Cutoff = Decimal("0.5")
    margin_weight: float = Field(default=0.5, ge=0, le=10, allow_inf_nan=False)
    future_weight: float = Field(default=10.0, ge=0, le=100, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> TierPolicy:
        if self.mid >= self.high:
            raise ValueError("tiers.mid must be below tiers.high")
        if self.method == "percentile" and self.high > 1:
            raise ValueError("percentile cut-offs must lie in [0, 1]")
        return self


class StagePolicy(_Strict):
    at_risk_multiple: float = Field(default=2.0, gt=0, le=100, allow_inf_nan=False)
    churn_multiple: float = Field(default=4.0, gt=0, le=100, allow_inf_nan=False)
    min_at_risk_days: float = Field(default=30, ge=0, le=3650, allow_inf_nan=False)
    min_churn_days: float = Field(default=90, ge=0, le=3650, allow_inf_nan=False)
    new_max_days: float = Field(default=90, gt=0, le=3650, allow_inf_nan=False)
    loyal_min_orders: int = Field(default=4, ge=2, le=1000)
    loyal_min_tenure_days: float = Field(default=180, ge=0, le=3650, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> StagePolicy:
        if self.churn_multiple <= self.at_risk_multiple:
            raise ValueError("stages.churn_multiple must exceed stages.at_risk_multiple")
        if self.min_churn_days < self.min_at_risk_days:
            raise ValueError("stages.min_churn_days must not be below stages.min_at_risk_days")
        return self


class StrategyMatch(_Strict):
    tier: Literal["high", "mid", "low"] | None = None
    stage: Literal["prospect", "new", "returning", "loyal", "at_risk", "churned"] | None = None
    segment: Code | None = Field(
        default=None, description="A sub-segment value that must appear in `segments`."
    )


class Strategy(_Strict):
    code: Code
    match: StrategyMatch
    priority: int = Field(ge=1, le=5, description="1 = act first")
    cadence_days: int = Field(ge=1, le=3650, description="How often to contact")
    label: dict[Literal["en", "zh-CN"], Label]
    actions: dict[Literal["en", "zh-CN"], list[Action]]

    @model_validator(mode="after")
    def _english_present(self) -> Strategy:
        if "en" not in self.label or "en" not in self.actions:
            raise ValueError(f"strategy {self.code} needs an English label and actions")
        return self


class RecomputeSchedule(_Strict):
    """When every customer is re-evaluated on its own (new events are handled at once)."""

    enabled: bool = True
    every: Literal["day", "hour"] = "day"
    hour: int = Field(default=3, ge=0, le=23, description="Hour of the day (for `day`)")
    timezone: str | None = Field(
        default=None, description="IANA time zone; default: the home country's"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class PolicyDocument(_Strict):
    base_currency: CurrencyCode = "USD"
    exchange_rates: dict[CurrencyCode, Money] = Field(
        default_factory=dict,
        description="Value of one unit of each currency in the base currency.",
    )
    home_country: CountryCode | None = Field(
        default="CN",
        description="The seller's home country; `segments.geography` is judged against it.",
    )
    horizon_days: int = Field(default=180, ge=7, le=1095)
    schedule: RecomputeSchedule = Field(default_factory=RecomputeSchedule)
    min_population: int = Field(
        default=200,
        ge=0,
        le=1_000_000,
        description="Customers with orders needed before the model is fitted; fewer: priors.",
    )
    tiers: TierPolicy = Field(default_factory=TierPolicy)
    stages: StagePolicy = Field(default_factory=StagePolicy)
    strategies: list[Strategy] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> PolicyDocument:
        for currency, rate in self.exchange_rates.items():
            if rate <= 0:
                raise ValueError(f"exchange_rates.{currency} must be positive")
        codes = [s.code for s in self.strategies]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"strategy codes must be unique: {', '.join(duplicates)}")
        uncovered = [
            f"{tier}/{stage}"
            for tier in TIERS
            for stage in STAGES
            if not any(
                s.match.segment is None
                and s.match.tier in (None, tier)
                and s.match.stage in (None, stage)
                for s in self.strategies
            )
        ]
        if uncovered:
            raise ValueError(
                "every tier/stage needs a strategy without a segment condition; missing: "
                + ", ".join(uncovered)
            )
        return self

    def rate(self, currency: str) -> Decimal | None:
        """Value of one unit of `currency` in the base currency; None if unknown."""
        if currency == self.base_currency:
            return Decimal(1)
        return self.exchange_rates.get(currency)


class PolicyRead(PolicyDocument):
    version: int
    created_at: datetime


class PolicyBody(PolicyDocument):
    """What PUT takes: the document as GET returned it; `version`/`created_at` are ignored."""

    version: int | None = Field(default=None, exclude=True)
    created_at: datetime | None = Field(default=None, exclude=True)

    def document(self) -> PolicyDocument:
        return PolicyDocument.model_validate(self.model_dump())
