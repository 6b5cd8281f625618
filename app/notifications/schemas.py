from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

EVENT_TYPES = (
    "customer.tier_changed",
    "customer.stage_changed",
    "segment.entered",
    "segment.exited",
)
EventType = Literal[
    "customer.tier_changed", "customer.stage_changed", "segment.entered", "segment.exited", "*"
]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048, strip_whitespace=True)]
Description = Annotated[str, StringConstraints(max_length=500)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://crm.example.com/hooks/stratum",
                    "events": ["customer.tier_changed", "customer.stage_changed"],
                    "description": "CRM customer sync",
                }
            ]
        },
    )

    url: Url = Field(description="http(s) URL on a public address")
    events: list[EventType] = Field(
        min_length=1, max_length=5, description='The event types to receive, or `["*"]`'
    )
    description: Description | None = None


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=5)
    description: Description | None = None


class EndpointRead(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointRead):
    secret: str = Field(
        description="The Standard Webhooks signing secret (`whsec_…`); shown only here"
    )


class AttemptRead(BaseModel):
    event_id: str = Field(description="The notification's id, sent as `webhook-id`")
    type: str
    attempt: int = Field(description="1 for the first attempt of this delivery")
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered")
    error: str | None = Field(description="Why there was no answer (timeout, refused, …)")
    duration_ms: float
