from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Text,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class Job(Base):
    """What the API shows of a job; the queue's own rows only carry its tasks."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="state"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, server_default="queued")
    requested_as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    policy_version: Mapped[int | None] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(BigInteger, server_default="0")
    done: Mapped[int] = mapped_column(BigInteger, server_default="0")
    ranges_left: Mapped[int] = mapped_column(Integer, server_default="0")
    tier_changed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    stage_changed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # One job per (schedule, slot): the unique key that makes exactly one process run it.
    schedule_slot: Mapped[str | None] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class JobRange(Base):
    """One id range of a recompute; `done` commits with the range's classifications."""

    __tablename__ = "job_ranges"

    job_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    after: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    upto: Mapped[int] = mapped_column(BigInteger)
    done: Mapped[bool] = mapped_column(Boolean, server_default=false())


class DirtyCustomer(Base):
    """A customer with events newer than their stored classification (one row per insert).

    No foreign key: every mark comes from an event insert that passed the events table's
    own, and checking each mark again doubled the cost of ingesting a batch. Erasure
    deletes a customer's marks; the worker drops a mark whose customer is gone."""

    __tablename__ = "dirty_customers"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, index=True)
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
