from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.types import ExternalId, PastTimestamp


class TierOut(BaseModel):
    code: str = Field(description="high | mid | low")
    label: str
    score: float = Field(ge=0, le=1, description="Value score; orders customers across tiers")


class StageOut(BaseModel):
    code: str = Field(description="prospect | new | returning | loyal | at_risk | churned")
    label: str


class StrategyOut(BaseModel):
    code: str
    label: str
    actions: list[str]
    priority: int = Field(description="1 = act first")
    cadence_days: int = Field(description="Suggested contact interval")


class MetricsOut(BaseModel):
    orders: int
    revenue: str = Field(description="Gross order value in the base currency")
    refunds: str
    net_revenue: str
    margin: str | None = Field(description="Summed profit of orders that carried a margin")
    currency: str
    first_order_at: datetime | None
    last_order_at: datetime | None
    recency_days: float | None = Field(description="Days since the last order")
    tenure_days: float | None = Field(description="Days since the customer was first seen")
    churn_probability: float = Field(description="P(no order in the horizon after as_of)")
    expected_orders: float
    expected_revenue: str
    horizon_days: int


class ClassificationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "c-1042",
                    "as_of": "2026-03-01T00:00:00Z",
                    "tier": {"code": "high", "label": "High value", "score": 0.91},
                    "stage": {"code": "at_risk", "label": "At risk"},
                    "segments": {"geography": "international", "rfm_group": "at_risk"},
                    "strategy": {
                        "code": "high_at_risk",
                        "label": "Personal retention call",
                        "actions": ["Account manager calls within 2 business days"],
                        "priority": 1,
                        "cadence_days": 7,
                    },
                    "metrics": {"orders": 14, "revenue": "18230.00", "currency": "USD"},
                    "reasons": ["No order for 96 days; this customer usually orders every 45 days"],
                    "policy_version": 3,
                }
            ]
        }
    )

    customer_id: str
    as_of: datetime
    tier: TierOut
    stage: StageOut
    segments: dict[str, Any]
    strategy: StrategyOut
    metrics: MetricsOut
    reasons: list[str]
    policy_version: int
    model: dict[str, Any] = Field(
        description="Which population model produced the estimates: `source` (fitted or "
        "priors), `cutoff`, `name` (the answering model: bgnbd, bgnbd_platt, calibrated, "
        "pareto_nbd or prior), `version` (the engine's model version), `trained_on`, and "
        "`validation` (its held-out figures on the newest window, with every candidate's "
        "log-loss, `final_map` (none, platt or beta: the map applied last) and each map's "
        "log-loss in `maps`; null when not validated)."
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_ids: list[ExternalId] = Field(min_length=1, max_length=1000)
    as_of: PastTimestamp | None = None
    horizon_days: int | None = Field(default=None, ge=1, le=1095)


class BatchResponse(BaseModel):
    items: list[ClassificationOut]
