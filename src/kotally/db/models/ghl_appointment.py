from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base


class GhlAppointment(Base):
    """Where a GHL appointment stands as its webhooks have been applied.

    Orders its events by GHL's `dateUpdated` (webhooks.md §2): an event older than
    `date_updated` is stale. `deducts` counts the deduct attempts, so each derives its own
    request_id (`ghl:appt:<id>:deduct:<n>`); `holding` says whether the appointment holds the
    credit of its last deduct. Kept apart from `appointments`, which needs a known contact: a
    cancellation can arrive before its booking, for a contact Kotally has not seen yet.
    """

    __tablename__ = "ghl_appointments"
    __table_args__ = (CheckConstraint("deducts >= 0", name="deducts"),)

    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    appointment_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    date_updated: Mapped[datetime | None]
    start_time: Mapped[datetime | None]
    deducts: Mapped[int] = mapped_column(default=0)
    holding: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]
