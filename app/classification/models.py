from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class PopulationFit(Base):
    """A population model fitted once per (policy version, cut-off, horizon) and reused."""

    __tablename__ = "population_fits"

    policy_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    cutoff: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    horizon_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CurrentClassification(Base):
    """The stored classification of each customer, written by `recompute`."""

    __tablename__ = "classifications"
    # (tier, stage) is served by the covering cell index (migration 0008).
    __table_args__ = (Index("ix_classifications_stage", "stage"),)

    # No foreign key (migration 0012): the statement that stores it locks the customer's
    # row, and erasure deletes it.
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    policy_version: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(8))
    tier_score: Mapped[float] = mapped_column(Float)
    stage: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(64))
    churn_probability: Mapped[float] = mapped_column(Float)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(Numeric(24, 6))
    expected_revenue: Mapped[Decimal] = mapped_column(Numeric(24, 6))
    segments: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ClassificationChange(Base):
    """History: one row each time a customer's stored tier or stage changed."""

    __tablename__ = "classification_changes"
    __table_args__ = (Index("ix_classification_changes_customer", "customer_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # No foreign key, as for the classification (migration 0012).
    customer_id: Mapped[int] = mapped_column(BigInteger)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    policy_version: Mapped[int] = mapped_column(Integer)
    from_tier: Mapped[str | None] = mapped_column(String(8))
    to_tier: Mapped[str] = mapped_column(String(8))
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class HistorySnapshot(Base):
    """A customer's history aggregated up to the start of a UTC day (long histories only)."""

    __tablename__ = "history_snapshots"

    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    upto: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB)
