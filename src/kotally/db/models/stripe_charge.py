from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base

DISPUTE_STATES = ("open", "won", "lost", "closed")


class StripeChargeClawback(Base):
    """What refunds and lost disputes of one charge have clawed back so far.

    `credits_target` is what the charge's refunds entitle Kotally to take back (cumulative, as
    Stripe's `amount_refunded` is); `credits_clawed_back` is what was actually voided. The
    difference is the shortfall: credits the customer had already used.
    """

    __tablename__ = "stripe_charge_clawbacks"
    __table_args__ = (
        UniqueConstraint("location_id", "charge_id"),
        CheckConstraint(
            "credits_clawed_back >= 0 AND credits_clawed_back <= credits_target",
            name="credits",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    charge_id: Mapped[str] = mapped_column(String(255))
    amount_refunded_cents: Mapped[int] = mapped_column(BigInteger())
    credits_target: Mapped[int]
    credits_clawed_back: Mapped[int]
    fully_refunded: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StripeDispute(Base):
    """A dispute of a charge and where it stands, so a late `created` cannot pause again."""

    __tablename__ = "stripe_disputes"
    __table_args__ = (
        UniqueConstraint("location_id", "dispute_id"),
        CheckConstraint("state IN ('open', 'won', 'lost', 'closed')", name="state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    dispute_id: Mapped[str] = mapped_column(String(255))
    charge_id: Mapped[str | None] = mapped_column(String(255))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
