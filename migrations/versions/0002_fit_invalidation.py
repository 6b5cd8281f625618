"""Drop stored population fits that late-arriving events make stale.

A fit for cut-off C was made from events at or before C. When events that occurred at
or before C arrive later (a backfill, an import of history), the fit no longer describes
the data, so it is deleted and made again on next use. A statement-level trigger covers
every way events arrive (API, webhook, import, COPY) at the cost of one min() per
statement.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION population_fits_invalidate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM population_fits
             WHERE cutoff >= (SELECT min(occurred_at) FROM inserted_events);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER events_invalidate_fits
        AFTER INSERT ON events
        REFERENCING NEW TABLE AS inserted_events
        FOR EACH STATEMENT EXECUTE FUNCTION population_fits_invalidate()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER events_invalidate_fits ON events")
    op.execute("DROP FUNCTION population_fits_invalidate()")
