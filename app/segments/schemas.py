from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from app.core.types import LineText, MultilineText, plain_json_object

SegmentKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]

RULE_EXAMPLE: dict[str, Any] = {
    "all": [
        {"field": "country", "op": "in", "value": ["DE", "FR"]},
        {
            "any": [
                {"field": "tier", "op": "eq", "value": "high"},
                {"field": "churn_probability", "op": "gte", "value": 0.5},
            ]
        },
    ]
}


MAX_RULE_BYTES = 64 * 1024


def _rule_json(value: Any) -> Any:
    # The compiler checks meaning; this keeps what is stored plain JSON (no NaN, no NUL).
    return plain_json_object(value, max_bytes=MAX_RULE_BYTES)


class SegmentWrite(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "EU key accounts at risk", "rule": RULE_EXAMPLE, "key": "eu-key-risk"}
            ]
        },
    )

    name: Annotated[
        LineText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    description: Annotated[MultilineText, StringConstraints(max_length=2000)] | None = None
    rule: Annotated[dict[str, Any], BeforeValidator(_rule_json)] = Field(
        description="A condition {field, op, value} or a group {all|any: [...]} / {not: rule}. "
        "Fields: customer_id, country, customer_type, role, industry, company_size, "
        "created_at, tier, stage, strategy, tier_score, churn_probability, orders, revenue, "
        "expected_revenue, attributes.<key>, segments.<key>. Ops: eq, ne, in, not_in, gt, "
        "gte, lt, lte, exists, contains."
    )


class SegmentCreate(SegmentWrite):
    key: SegmentKey


class SegmentRead(BaseModel):
    key: str
    name: str
    description: str | None
    rule: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class Cell(BaseModel):
    tier: str
    stage: str
    customers: int
    revenue: str


class Overview(BaseModel):
    currency: str
    classified: int
    unclassified: int
    revenue: str
    as_of: datetime | None = Field(description="Newest as_of of the stored classifications")
    policy_version: int | None
    cells: list[Cell] = Field(description="Customers and revenue per tier x stage")
    tiers: dict[str, int]
    stages: dict[str, int]
