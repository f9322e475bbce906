"""embed sessions: the staff embed's short read-only sessions

A GHL custom page exchanges GHL's encrypted user context for a 15-minute bearer token scoped to
one location (docs/embed.md). Only the token's keyed hash is stored; who opened the session is
recorded with it. Expired rows are purged by expires_at.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kotally.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "embed_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=255), nullable=False),
        sa.Column("ghl_user_id", sa.String(length=255), nullable=True),
        sa.Column("ghl_company_id", sa.String(length=255), nullable=True),
        sa.Column("user_name", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("role", sa.String(length=64), nullable=True),
        sa.Column("user_type", sa.String(length=64), nullable=True),
        sa.Column("created_at", kotally.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", kotally.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_embed_sessions_location_id_locations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embed_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_embed_sessions_token_hash")),
    )
    with op.batch_alter_table("embed_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_embed_sessions_expires_at", ["expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_embed_sessions_location_id"), ["location_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("embed_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_embed_sessions_location_id"))
        batch_op.drop_index("ix_embed_sessions_expires_at")
    op.drop_table("embed_sessions")
