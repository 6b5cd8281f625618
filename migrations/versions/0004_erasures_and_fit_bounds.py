"""Erasures remembered as keyed hashes; stored population fits bounded.

`erasures` holds one HMAC of each erased customer id, so ingestion can refuse a replay of
their events without keeping anything that names them.

Population fits are capped: after each insert only the newest MAX_FITS remain, so a
caller asking for many days or horizons evicts old fits instead of growing the table,
and the invalidation trigger of late events (0002: once per statement, only fits whose
cut-off is at or after the earliest new event) has at most MAX_FITS rows to drop.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_FITS = 32


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("subject", sa.LargeBinary(), nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_erasures")),
    )
    op.execute(
        f"""
        CREATE FUNCTION population_fits_evict() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM population_fits
             WHERE (policy_version, cutoff, horizon_days) IN (
                   SELECT policy_version, cutoff, horizon_days FROM population_fits
                    ORDER BY created_at DESC, cutoff DESC OFFSET {MAX_FITS});
            RETURN NULL;
        END
        $$
        """  # noqa: S608 - MAX_FITS is this module's integer constant
    )
    op.execute(
        """
        CREATE TRIGGER population_fits_bounded
        AFTER INSERT ON population_fits
        FOR EACH STATEMENT EXECUTE FUNCTION population_fits_evict()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER population_fits_bounded ON population_fits")
    op.execute("DROP FUNCTION population_fits_evict()")
    op.drop_table("erasures")
