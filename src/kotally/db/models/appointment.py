from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from kotally.db.models.base import Base

APPOINTMENT_STATUSES = ("booked", "cancelled", "showed", "noshow")


class Appointment(Base):
    """A booking that drew credits, keyed by the caller's external_ref."""

    __tablename__ = "appointments"
    __table_args__ = (
        UniqueConstraint("location_id", "external_ref"),
        CheckConstraint("status IN ('booked', 'cancelled', 'showed', 'noshow')", name="status"),
        CheckConstraint(
            "credits_deducted >= 0 AND credits_restored >= 0 "
            "AND credits_restored <= credits_deducted",
            name="credits",
        ),
        Index("ix_appointments_contact", "location_id", "contact_id", "appointment_time"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id"))
    external_ref: Mapped[str] = mapped_column(String(255))
    calendar_id: Mapped[str | None] = mapped_column(String(255))
    appointment_time: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="booked")
    credits_deducted: Mapped[int] = mapped_column(default=0)
    credits_restored: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # A booking the ledger refused (e.g. INSUFFICIENT_CREDITS): shown with credits_deducted 0.
    refusal: Mapped[str | None] = mapped_column(String(64))


# When an appointment happened in the contact reads: its time, or when it was recorded if the
# booking came without one. Past appointments and the timeline page on this expression.
APPOINTMENT_AT = func.coalesce(Appointment.appointment_time, Appointment.created_at)

Index(
    "ix_appointments_contact_at",
    Appointment.location_id,
    Appointment.contact_id,
    APPOINTMENT_AT,
    Appointment.id,
)
