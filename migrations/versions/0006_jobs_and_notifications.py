"""Jobs on a PostgreSQL queue, incremental re-classification, change history API indexes
and the transactional outbox of notifications to the CRM.

The queue's own tables come from the installed `pgqueuer` (its install DDL). Triggers do
the bookkeeping in the transactions that cause it, so no writer has to remember:
- an insert into `events` marks its customers dirty (an append-only table, so ingestion
  never waits on a lock held by the re-classifier);
- an insert into `classification_changes` writes tier/stage notifications, and an insert
  into `notifications` fans them out to the subscribed endpoints (only when some endpoint
  exists, so a bulk recompute without subscribers writes nothing extra).

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _queue_ddl() -> str:
    from pgqueuer.adapters.persistence import schema_ddl
    from pgqueuer.domain.settings import DBSettings

    return schema_ddl.render_install(DBSettings(), create_schema=False)


def _execute_script(sql: str) -> None:
    """A multi-statement script in one round trip (asyncpg's simple query protocol)."""
    from sqlalchemy.util import await_only

    raw = op.get_bind().connection.dbapi_connection
    assert raw is not None
    await_only(raw.driver_connection.execute(sql))  # type: ignore[attr-defined]


def upgrade() -> None:
    _execute_script(_queue_ddl())

    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False, server_default="queued"),
        sa.Column("requested_as_of", _TS, nullable=True),
        sa.Column("as_of", _TS, nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("done", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("ranges_left", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("tier_changed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("stage_changed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("schedule_slot", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        sa.Column("error", postgresql.JSONB(), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="state"
        ),
        sa.UniqueConstraint("schedule_slot"),
    )
    op.create_table(
        "job_ranges",
        sa.Column(
            "job_id", sa.BigInteger(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("after", sa.BigInteger(), nullable=False),
        sa.Column("upto", sa.BigInteger(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("job_id", "after"),
    )

    op.create_table(
        "dirty_customers",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "customer_id",
            sa.BigInteger(),
            sa.ForeignKey("customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("marked_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_dirty_customers_customer_id", "dirty_customers", ["customer_id"])
    op.execute(
        """
        CREATE FUNCTION events_mark_dirty() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO dirty_customers (customer_id)
            SELECT DISTINCT customer_id FROM new_events;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER events_mark_dirty
        AFTER INSERT ON events
        REFERENCING NEW TABLE AS new_events
        FOR EACH STATEMENT EXECUTE FUNCTION events_mark_dirty()
        """
    )

    op.create_index("ix_classification_changes_as_of_id", "classification_changes", ["as_of", "id"])
    op.create_index(
        "ix_classification_changes_customer_as_of_id",
        "classification_changes",
        ["customer_id", "as_of", "id"],
    )
    op.create_index(
        "ix_classification_changes_tiers",
        "classification_changes",
        ["to_tier", "from_tier", "as_of", "id"],
    )
    op.create_index(
        "ix_classification_changes_stages",
        "classification_changes",
        ["to_stage", "from_stage", "as_of", "id"],
    )

    op.create_table(
        "segment_memberships",
        sa.Column(
            "segment_id",
            sa.BigInteger(),
            sa.ForeignKey("segments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "customer_id",
            sa.BigInteger(),
            sa.ForeignKey("customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("segment_id", "customer_id"),
    )
    op.create_index("ix_segment_memberships_customer_id", "segment_memberships", ["customer_id"])

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("public_id", sa.Text(), nullable=False, unique=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "event_id",
            sa.Text(),
            nullable=False,
            unique=True,
            server_default=sa.text("'evt_' || replace(gen_random_uuid()::text, '-', '')"),
        ),
        sa.Column(
            "customer_id",
            sa.BigInteger(),
            sa.ForeignKey("customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column(
            "change_id",
            sa.BigInteger(),
            sa.ForeignKey("classification_changes.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("data", postgresql.JSONB(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_notifications_customer_id", "notifications", ["customer_id"])
    op.create_index("ix_notifications_change_id", "notifications", ["change_id"])
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "notification_id",
            sa.BigInteger(),
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "endpoint_id",
            sa.BigInteger(),
            sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", _TS, nullable=True),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
    )
    op.create_index(
        "ix_notification_deliveries_due",
        "notification_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_notification_deliveries_order",
        "notification_deliveries",
        ["endpoint_id", "customer_id", "notification_id"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_notification_deliveries_notification_id",
        "notification_deliveries",
        ["notification_id"],
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.BigInteger(),
            sa.ForeignKey("notification_deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "endpoint_id",
            sa.BigInteger(),
            sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_delivery_attempts_endpoint_id_id", "delivery_attempts", ["endpoint_id", "id"]
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])

    op.execute(
        """
        CREATE FUNCTION classification_changes_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM webhook_endpoints) THEN
                RETURN NULL;
            END IF;
            INSERT INTO notifications (customer_id, type, change_id)
            SELECT customer_id, type, id FROM (
                SELECT customer_id, 'customer.tier_changed' AS type, id, 0 AS k
                  FROM new_changes WHERE from_tier IS DISTINCT FROM to_tier
                UNION ALL
                SELECT customer_id, 'customer.stage_changed', id, 1
                  FROM new_changes WHERE from_stage IS DISTINCT FROM to_stage
            ) c ORDER BY id, k;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER classification_changes_notify
        AFTER INSERT ON classification_changes
        REFERENCING NEW TABLE AS new_changes
        FOR EACH STATEMENT EXECUTE FUNCTION classification_changes_notify()
        """
    )
    op.execute(
        """
        CREATE FUNCTION notifications_fan_out() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO notification_deliveries (notification_id, endpoint_id, customer_id)
            SELECT n.id, e.id, n.customer_id
              FROM new_notifications n
              JOIN webhook_endpoints e ON '*' = ANY(e.events) OR n.type = ANY(e.events)
             ORDER BY n.id, e.id;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER notifications_fan_out
        AFTER INSERT ON notifications
        REFERENCING NEW TABLE AS new_notifications
        FOR EACH STATEMENT EXECUTE FUNCTION notifications_fan_out()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER notifications_fan_out ON notifications")
    op.execute("DROP FUNCTION notifications_fan_out()")
    op.execute("DROP TRIGGER classification_changes_notify ON classification_changes")
    op.execute("DROP FUNCTION classification_changes_notify()")
    for table in (
        "delivery_attempts",
        "notification_deliveries",
        "notifications",
        "webhook_endpoints",
        "segment_memberships",
    ):
        op.drop_table(table)
    for index in (
        "ix_classification_changes_stages",
        "ix_classification_changes_tiers",
        "ix_classification_changes_customer_as_of_id",
        "ix_classification_changes_as_of_id",
    ):
        op.drop_index(index, table_name="classification_changes")
    op.execute("DROP TRIGGER events_mark_dirty ON events")
    op.execute("DROP FUNCTION events_mark_dirty()")
    op.drop_table("dirty_customers")
    op.drop_table("job_ranges")
    op.drop_table("jobs")
    from pgqueuer.adapters.persistence import schema_ddl
    from pgqueuer.domain.settings import DBSettings

    _execute_script(schema_ddl.render_uninstall(DBSettings()))
