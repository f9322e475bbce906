from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base


class Grant(Base):
    """One confirmed payment that granted credits."""

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint("location_id", "external_payment_id"),
        CheckConstraint("amount_cents IS NULL OR amount_cents >= 0", name="amount_cents"),
        Index("ix_grants_contact", "location_id", "contact_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id"))
    product_config_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("product_configs.id"))
    external_payment_id: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(128))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger())
    currency: Mapped[str | None] = mapped_column(String(3))
    paid_at: Mapped[datetime | None]
    external_ref: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    request_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]


# When a payment happened in the contact reads: paid_at, or when it was recorded without one.
# The payments list and the timeline page on this expression.
GRANT_AT = func.coalesce(Grant.paid_at, Grant.created_at)

Index("ix_grants_contact_paid", Grant.location_id, Grant.contact_id, GRANT_AT, Grant.id)
