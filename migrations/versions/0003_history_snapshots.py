"""Per-customer history snapshots: a long history aggregated once a day, not per request.

A snapshot holds a customer's aggregates up to the start of a UTC day; a classification
later that day adds only the events since. Late events for an earlier time delete the
snapshot (the same statement-level trigger that drops stale population fits).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "history_snapshots",
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("upto", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_history_snapshots_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_history_snapshots")),
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION population_fits_invalidate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM population_fits
             WHERE cutoff >= (SELECT min(occurred_at) FROM inserted_events);
            DELETE FROM history_snapshots s
             USING (SELECT customer_id, min(occurred_at) AS earliest
                      FROM inserted_events GROUP BY customer_id) i
             WHERE s.customer_id = i.customer_id AND i.earliest <= s.upto;
            RETURN NULL;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION population_fits_invalidate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM population_fits
             WHERE cutoff >= (SELECT min(occurred_at) FROM inserted_events);
            RETURN NULL;
        END
        $$
        """
    )
    op.drop_table("history_snapshots")
