"""indexes for the contact reads

Keyset pagination of the contact reads (api-v2.md §4.6) walks each list in index order, so a
page costs its own rows however long the contact's history is.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_entries_contact_time",
        "ledger_entries",
        ["location_id", "contact_id", "created_at", "id"],
    )
    op.create_index(
        "ix_entitlements_contact_created",
        "entitlements",
        ["location_id", "contact_id", "created_at", "id"],
    )
    op.create_index("ix_entitlements_grant", "entitlements", ["grant_id"])
    # Expression indexes (SQLite >= 3.9, PostgreSQL): the reads order by these very expressions.
    op.create_index(
        "ix_appointments_contact_at",
        "appointments",
        ["location_id", "contact_id", sa.text("coalesce(appointment_time, created_at)"), "id"],
    )
    op.create_index(
        "ix_grants_contact_paid",
        "grants",
        ["location_id", "contact_id", sa.text("coalesce(paid_at, created_at)"), "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_grants_contact_paid", table_name="grants")
    op.drop_index("ix_appointments_contact_at", table_name="appointments")
    op.drop_index("ix_entitlements_grant", table_name="entitlements")
    op.drop_index("ix_entitlements_contact_created", table_name="entitlements")
    op.drop_index("ix_ledger_entries_contact_time", table_name="ledger_entries")
