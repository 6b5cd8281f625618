"""Dashboard: every population-wide figure from one index-only scan.

The overview's matrix, its split by geography and customer type, the churn distribution
and the work list's strategy sizes are one grouped pass over the stored classifications.
Over the table that pass reads every row with its JSON (about 380 bytes a row); over a
covering index it reads a fifth of that. An index cannot include an expression, so the
two sub-segments the splits group by are stored generated columns (`segments` stays the
one source: PostgreSQL derives them on every write, the writers do not change).

`classifications (tier, stage, customer_id)` (0007) becomes that covering index; a cell's
members still page by keyset on it. Statistics on how many distinct groups the pass makes
(a few hundred, where the columns' counts multiplied suggest a hundred thousand) let the
planner hash them in memory instead of sorting a million rows on disk.

Revision ID: 0008_dashboard_covering
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_dashboard_covering"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The churn histogram's bin, as app.dashboard.repository groups by it (20 bins).
BIN = "least(width_bucket(churn_probability, 0, 1, 20), 20)"
COVERED = [
    "revenue",
    "churn_probability",
    "strategy",
    "segment_geography",
    "segment_customer_type",
    "as_of",
    "policy_version",
]


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE classifications
          ADD COLUMN segment_geography text
              GENERATED ALWAYS AS (segments ->> 'geography') STORED,
          ADD COLUMN segment_customer_type text
              GENERATED ALWAYS AS (segments ->> 'customer_type') STORED
        """
    )
    op.create_index(
        "ix_classifications_cell",
        "classifications",
        ["tier", "stage", "customer_id"],
        postgresql_include=COVERED,
    )
    op.drop_index("ix_classifications_tier_stage_customer", table_name="classifications")
    op.execute(
        f"""
        CREATE STATISTICS st_classifications_population (ndistinct)
            ON tier, stage, segment_geography, segment_customer_type, strategy, ({BIN})
          FROM classifications
        """
    )


def downgrade() -> None:
    op.execute("DROP STATISTICS st_classifications_population")
    op.create_index(
        "ix_classifications_tier_stage_customer",
        "classifications",
        ["tier", "stage", "customer_id"],
    )
    op.drop_index("ix_classifications_cell", table_name="classifications")
    op.execute(
        "ALTER TABLE classifications DROP COLUMN segment_customer_type,"
        " DROP COLUMN segment_geography"
    )
