"""Dashboard: browser sessions, and the indexes its pages read from.

- `classification_changes (as_of, id)` covering the from/to columns: movements over a
  window and segment sizes over time are index-only range scans;
- `classification_changes (to_tier, to_stage, as_of)` and `(from_tier, from_stage, as_of)`:
  one cell's entries and exits over time, two small range scans;
- `classifications (tier, stage, customer_id)`: a cell's members page by keyset;
- `classifications (strategy, tier_score DESC, customer_id)`: the work list, most valuable
  first within each strategy;
- `classifications (updated_at)`: when classifications were last written, one lookup (the
  dashboard reuses population-wide aggregates until then).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_dashboard_sessions_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_dashboard_sessions_token_hash")),
    )
    op.create_index(
        op.f("ix_dashboard_sessions_key_id"), "dashboard_sessions", ["key_id"], unique=False
    )
    op.create_index(
        op.f("ix_dashboard_sessions_expires_at"), "dashboard_sessions", ["expires_at"], unique=False
    )
    op.create_index(
        "ix_classification_changes_as_of",
        "classification_changes",
        ["as_of", "id"],
        postgresql_include=["from_tier", "from_stage", "to_tier", "to_stage", "customer_id"],
    )
    for side in ("to", "from"):
        op.create_index(
            f"ix_classification_changes_{side}_cell",
            "classification_changes",
            [f"{side}_tier", f"{side}_stage", "as_of"],
        )
    op.create_index(
        "ix_classifications_tier_stage_customer",
        "classifications",
        ["tier", "stage", "customer_id"],
    )
    op.create_index(
        "ix_classifications_strategy_score",
        "classifications",
        ["strategy", sa.text("tier_score DESC"), "customer_id"],
    )

    op.create_index("ix_classifications_updated_at", "classifications", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_classifications_updated_at", table_name="classifications")
    op.drop_index("ix_classifications_strategy_score", table_name="classifications")
    op.drop_index("ix_classifications_tier_stage_customer", table_name="classifications")
    for side in ("to", "from"):
        op.drop_index(f"ix_classification_changes_{side}_cell", table_name="classification_changes")
    op.drop_index("ix_classification_changes_as_of", table_name="classification_changes")
    op.drop_index(op.f("ix_dashboard_sessions_expires_at"), table_name="dashboard_sessions")
    op.drop_index(op.f("ix_dashboard_sessions_key_id"), table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
