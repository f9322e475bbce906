from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base

BILLING_STATUSES = ("active", "trialing", "suspended")


class Location(Base):
    """The tenant: a GoHighLevel sub-account or a standalone API workspace."""

    __tablename__ = "locations"
    __table_args__ = (
        CheckConstraint(
            "billing_status IN ('active', 'trialing', 'suspended')", name="billing_status"
        ),
        CheckConstraint(
            "cancellation_window_hours IS NULL OR cancellation_window_hours >= 0",
            name="cancellation_window_hours",
        ),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    billing_status: Mapped[str] = mapped_column(String(16), default="active")
    cancellation_window_hours: Mapped[int | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The Stripe endpoint secret (whsec_…) of this location's Stripe account; never printed.
    stripe_webhook_secret: Mapped[str | None] = mapped_column(Text())
    # GHL Marketplace app state: INSTALL sets installed_at and clears uninstalled_at; while
    # uninstalled_at is set, the location's GHL events are ignored.
    ghl_installed_at: Mapped[datetime | None]
    ghl_uninstalled_at: Mapped[datetime | None]
