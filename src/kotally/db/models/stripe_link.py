from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base


class StripeGrantLink(Base):
    """The Stripe objects behind one grant, so refunds and disputes can find its lot."""

    __tablename__ = "stripe_grant_links"
    __table_args__ = (
        UniqueConstraint("grant_id"),
        Index("ix_stripe_grant_links_payment_intent", "location_id", "payment_intent_id"),
        Index("ix_stripe_grant_links_invoice", "location_id", "invoice_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    grant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("grants.id"))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    invoice_id: Mapped[str | None] = mapped_column(String(255))
    checkout_session_id: Mapped[str | None] = mapped_column(String(255))
    subscription_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]


class StripeInvoicePayment(Base):
    """An invoice paid by a payment intent: from `invoice_payment.paid` (API 2025-03-31 and
    later) or from an older invoice's own `payment_intent` field."""

    __tablename__ = "stripe_invoice_payments"
    __table_args__ = (
        UniqueConstraint("location_id", "invoice_id", "payment_intent_id"),
        Index("ix_stripe_invoice_payments_payment_intent", "location_id", "payment_intent_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    invoice_id: Mapped[str] = mapped_column(String(255))
    payment_intent_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
