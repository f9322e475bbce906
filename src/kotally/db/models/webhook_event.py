from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base

EVENT_STATUSES = ("processed", "refused", "unmatched", "ignored", "failed")


class WebhookEvent(Base):
    """The inbox: every verified provider event, stored once by (provider, provider_event_id).

    `location_id` carries no foreign key: an event for a location Kotally does not know is
    stored too (status `ignored`), so that an operator can see it arrived.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id"),
        CheckConstraint(
            "status IN ('processed', 'refused', 'unmatched', 'ignored', 'failed')", name="status"
        ),
        CheckConstraint("provider IN ('ghl', 'stripe')", name="provider"),
        Index("ix_webhook_events_location", "location_id", "received_at"),
        Index("ix_webhook_events_status", "status", "received_at"),
        Index("ix_webhook_events_received", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(128))
    location_id: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON())
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(64))
    effects: Mapped[list[str]] = mapped_column(JSON())
    details: Mapped[dict[str, Any]] = mapped_column(JSON())
    error: Mapped[str | None] = mapped_column(Text())
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(default=1)
