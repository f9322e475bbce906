"""stripe: what refunds and disputes need to find a payment's lots

`stripe_grant_links` names the payment intent, invoice, checkout session and subscription of
each Stripe grant; `stripe_invoice_payments` links invoices to payment intents (since API
2025-03-31 neither names the other; `invoice_payment.paid` does); `stripe_charge_clawbacks`
keeps what the refunds of one charge clawed back, so cumulative refunds never take twice;
`stripe_disputes` keeps where each dispute stands.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kotally.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _location_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["location_id"], ["locations.id"], name=op.f(f"fk_{table}_location_id_locations")
    )


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, kotally.db.types.UTCDateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "stripe_grant_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("location_id", sa.String(length=255), nullable=False),
        sa.Column("grant_id", sa.Uuid(), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("invoice_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("subscription_id", sa.String(length=255), nullable=True),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_stripe_grant_links_grant_id_grants")
        ),
        _location_fk("stripe_grant_links"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_grant_links")),
        sa.UniqueConstraint("grant_id", name=op.f("uq_stripe_grant_links_grant_id")),
    )
    with op.batch_alter_table("stripe_grant_links", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stripe_grant_links_payment_intent", ["location_id", "payment_intent_id"]
        )
        batch_op.create_index("ix_stripe_grant_links_invoice", ["location_id", "invoice_id"])

    op.create_table(
        "stripe_invoice_payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("location_id", sa.String(length=255), nullable=False),
        sa.Column("invoice_id", sa.String(length=255), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=False),
        _time("created_at"),
        _location_fk("stripe_invoice_payments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_invoice_payments")),
        sa.UniqueConstraint(
            "location_id",
            "invoice_id",
            "payment_intent_id",
            name=op.f("uq_stripe_invoice_payments_location_id_invoice_id_payment_intent_id"),
        ),
    )
    with op.batch_alter_table("stripe_invoice_payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stripe_invoice_payments_payment_intent", ["location_id", "payment_intent_id"]
        )

    op.create_table(
        "stripe_charge_clawbacks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("location_id", sa.String(length=255), nullable=False),
        sa.Column("charge_id", sa.String(length=255), nullable=False),
        sa.Column("amount_refunded_cents", sa.BigInteger(), nullable=False),
        sa.Column("credits_target", sa.Integer(), nullable=False),
        sa.Column("credits_clawed_back", sa.Integer(), nullable=False),
        sa.Column("fully_refunded", sa.Boolean(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.CheckConstraint(
            "credits_clawed_back >= 0 AND credits_clawed_back <= credits_target",
            name=op.f("ck_stripe_charge_clawbacks_credits"),
        ),
        _location_fk("stripe_charge_clawbacks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_charge_clawbacks")),
        sa.UniqueConstraint(
            "location_id",
            "charge_id",
            name=op.f("uq_stripe_charge_clawbacks_location_id_charge_id"),
        ),
    )

    op.create_table(
        "stripe_disputes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("location_id", sa.String(length=255), nullable=False),
        sa.Column("dispute_id", sa.String(length=255), nullable=False),
        sa.Column("charge_id", sa.String(length=255), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.CheckConstraint(
            "state IN ('open', 'won', 'lost', 'closed')", name=op.f("ck_stripe_disputes_state")
        ),
        _location_fk("stripe_disputes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_disputes")),
        sa.UniqueConstraint(
            "location_id", "dispute_id", name=op.f("uq_stripe_disputes_location_id_dispute_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("stripe_disputes")
    op.drop_table("stripe_charge_clawbacks")
    with op.batch_alter_table("stripe_invoice_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_stripe_invoice_payments_payment_intent")
    op.drop_table("stripe_invoice_payments")
    with op.batch_alter_table("stripe_grant_links", schema=None) as batch_op:
        batch_op.drop_index("ix_stripe_grant_links_invoice")
        batch_op.drop_index("ix_stripe_grant_links_payment_intent")
    op.drop_table("stripe_grant_links")
