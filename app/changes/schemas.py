from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TierStage(BaseModel):
    tier: str
    stage: str


class ChangeRead(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "c-1042",
                    "as_of": "2026-03-01T00:00:00Z",
                    "policy_version": 3,
                    "from": {"tier": "mid", "stage": "loyal"},
                    "to": {"tier": "high", "stage": "loyal"},
                }
            ]
        },
    )

    customer_id: str
    as_of: datetime
    policy_version: int
    from_: TierStage | None = Field(
        alias="from", description="null the first time the customer was classified"
    )
    to: TierStage
