"""Drop two indexes that others cover: every write of a classification and of its change
history maintains them, and no read needs them.

- `classification_changes (as_of, id)` (0006) is the key of
  `ix_classification_changes_as_of` (0007), which also carries the columns reads want.
- `classifications (tier, stage)` (0001) is the prefix of `ix_classifications_cell` (0008).

Revision ID: 0009_redundant_indexes
Revises: 0008_dashboard_covering
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_redundant_indexes"
down_revision: str | None = "0008_dashboard_covering"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_classification_changes_as_of_id", table_name="classification_changes")
    op.drop_index("ix_classifications_tier_stage", table_name="classifications")


def downgrade() -> None:
    op.create_index("ix_classifications_tier_stage", "classifications", ["tier", "stage"])
    op.create_index("ix_classification_changes_as_of_id", "classification_changes", ["as_of", "id"])
