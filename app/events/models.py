from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base

EVENT_TYPES = ("order", "refund", "inquiry", "feedback", "interaction")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(
            "type IN ('order', 'refund', 'inquiry', 'feedback', 'interaction')", name="type"
        ),
        # Classification as of T reads one customer's events up to T from this index
        # alone (an index-only scan), however long the history.
        Index(
            "ix_events_customer_time",
            "customer_id",
            "occurred_at",
            postgresql_include=["type", "amount_base", "margin_base", "rating"],
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    # No foreign key (migration 0011): every insert locks the customer's row itself, and
    # erasure deletes the customer's events.
    customer_id: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(24, 6))
    currency: Mapped[str | None] = mapped_column(String(3))
    amount_base: Mapped[Decimal | None] = mapped_column(Numeric(24, 6))
    margin: Mapped[Decimal | None] = mapped_column(Numeric(24, 6))
    margin_base: Mapped[Decimal | None] = mapped_column(Numeric(24, 6))
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    channel: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
