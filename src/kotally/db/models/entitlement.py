from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base

ENTITLEMENT_STATUSES = ("active", "exhausted", "expired", "voided", "paused")
LIVE_STATUSES = ("active", "exhausted")


class Entitlement(Base):
    """A lot: the credits of one grant. credits_remaining always equals the sum of its entries.

    On PostgreSQL the table keeps 30 % of each page free (fillfactor 70, migration 0013), so that
    a deduct's update of credits_remaining stays on its page and touches no index.
    """

    __tablename__ = "entitlements"
    __table_args__ = (
        CheckConstraint("credits_remaining >= 0", name="credits_remaining_nonnegative"),
        CheckConstraint("credits_granted > 0", name="credits_granted_positive"),
        CheckConstraint(
            "status IN ('active', 'exhausted', 'expired', 'voided', 'paused')", name="status"
        ),
        Index("ix_entitlements_contact", "location_id", "contact_id", "product_config_id"),
        Index("ix_entitlements_expiry", "status", "expires_at"),
        # Contact reads list lots newest first (keyset on created_at, id).
        Index("ix_entitlements_contact_created", "location_id", "contact_id", "created_at", "id"),
        # The lot of a grant: payment reads and grant_already_applied (migration 0003).
        Index("ix_entitlements_location_grant", "location_id", "grant_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id"))
    product_config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("product_configs.id"))
    grant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("grants.id"))
    credits_granted: Mapped[int]
    credits_remaining: Mapped[int]
    effective_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime]
