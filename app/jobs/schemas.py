from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.types import PastTimestamp

JOB_KINDS = ("recompute",)


class JobCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"kind": "recompute"}]}
    )

    kind: Literal["recompute"] = Field(description="What to run: `recompute` (every customer)")
    as_of: PastTimestamp | None = Field(
        default=None, description="Classify as of this time (default: when the job starts)"
    )


class Progress(BaseModel):
    done: int = Field(description="Customers classified so far")
    total: int = Field(description="Customers to classify (known once the job has started)")


class JobRead(BaseModel):
    job_id: str
    kind: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None = Field(
        description="The summary of a succeeded recompute: customers, seconds, tier_changed, "
        "stage_changed, policy_version, as_of"
    )
    error: dict[str, Any] | None = Field(description="An RFC 9457 problem object when failed")
    as_of: datetime | None = Field(description="The time customers are classified as of")
    schedule: str | None = Field(
        description="The schedule slot that started the job; null when started by a caller"
    )
