"""webhooks: the inbox, GHL appointment ordering, location webhook settings

`webhook_events` stores every verified provider event once, keyed by (provider, provider event
id); `ghl_appointments` orders each GHL appointment's events by `dateUpdated`; locations gain
their Stripe endpoint secret and GHL install state; appointments gain the refusal of a booking
the ledger refused (recorded with credits_deducted 0).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kotally.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, kotally.db.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("location_id", sa.String(length=255), nullable=True),
        _time("received_at"),
        _time("processed_at", nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("effects", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('processed', 'refused', 'unmatched', 'ignored', 'failed')",
            name=op.f("ck_webhook_events_status"),
        ),
        sa.CheckConstraint(
            "provider IN ('ghl', 'stripe')", name=op.f("ck_webhook_events_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint(
            "provider",
            "provider_event_id",
            name=op.f("uq_webhook_events_provider_provider_event_id"),
        ),
    )
    op.create_index("ix_webhook_events_location", "webhook_events", ["location_id", "received_at"])
    op.create_index("ix_webhook_events_status", "webhook_events", ["status", "received_at"])
    op.create_index("ix_webhook_events_received", "webhook_events", ["received_at"])
    op.create_table(
        "ghl_appointments",
        sa.Column("location_id", sa.String(length=255), nullable=False),
        sa.Column("appointment_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _time("date_updated", nullable=True),
        _time("start_time", nullable=True),
        sa.Column("deducts", sa.Integer(), nullable=False),
        sa.Column("holding", sa.Boolean(), nullable=False),
        _time("updated_at"),
        sa.CheckConstraint("deducts >= 0", name=op.f("ck_ghl_appointments_deducts")),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_ghl_appointments_location_id_locations"),
        ),
        sa.PrimaryKeyConstraint("location_id", "appointment_id", name=op.f("pk_ghl_appointments")),
    )
    with op.batch_alter_table("locations") as batch_op:
        batch_op.add_column(sa.Column("stripe_webhook_secret", sa.Text(), nullable=True))
        batch_op.add_column(_time("ghl_installed_at", nullable=True))
        batch_op.add_column(_time("ghl_uninstalled_at", nullable=True))
    with op.batch_alter_table("appointments") as batch_op:
        batch_op.add_column(sa.Column("refusal", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("appointments") as batch_op:
        batch_op.drop_column("refusal")
    with op.batch_alter_table("locations") as batch_op:
        batch_op.drop_column("ghl_uninstalled_at")
        batch_op.drop_column("ghl_installed_at")
        batch_op.drop_column("stripe_webhook_secret")
    op.drop_table("ghl_appointments")
    op.drop_index("ix_webhook_events_received", table_name="webhook_events")
    op.drop_index("ix_webhook_events_status", table_name="webhook_events")
    op.drop_index("ix_webhook_events_location", table_name="webhook_events")
    op.drop_table("webhook_events")
