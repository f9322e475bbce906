"""Appointment rows beside the credit movements: a refused booking, a status or a new time.

These write no lots and no ledger entries; deduct and restore (service.py, restore.py) keep
credits_deducted and credits_restored.
"""

from __future__ import annotations

from datetime import datetime

from kotally.contacts import repository as contacts
from kotally.db.models import Appointment
from kotally.kit.ids import new_id
from kotally.ledger import repository
from kotally.ledger.context import LedgerContext
from kotally.ledger.schemas import ContactRef


def record_refused_booking(
    ctx: LedgerContext,
    *,
    contact: ContactRef,
    external_ref: str,
    calendar_id: str | None,
    appointment_time: datetime | None,
    refusal: str,
) -> bool:
    """Show a booking the ledger refused on the contact's appointments (credits_deducted 0).

    An unknown contact has no appointments to show it on: False. An appointment that already
    holds credits keeps them; only one without credits takes the refusal.
    """
    found = contacts.find(ctx.session, ctx.location.id, contact, lock=True)
    if found is None:
        return False
    now = ctx.clock.now()
    appointment = repository.appointment_by_ref(ctx.session, ctx.location.id, external_ref)
    if appointment is None:
        ctx.session.add(
            Appointment(
                id=new_id(),
                location_id=ctx.location.id,
                contact_id=found.id,
                external_ref=external_ref,
                calendar_id=calendar_id,
                appointment_time=appointment_time,
                status="booked",
                credits_deducted=0,
                credits_restored=0,
                created_at=now,
                updated_at=now,
                refusal=refusal,
            )
        )
        return True
    if appointment.contact_id != found.id:
        return False
    if appointment.credits_deducted == appointment.credits_restored:
        appointment.status = "booked"
        appointment.refusal = refusal
        appointment.updated_at = now
        if appointment_time is not None:
            appointment.appointment_time = appointment_time
    return True


def mark(
    ctx: LedgerContext,
    external_ref: str,
    *,
    status: str | None = None,
    appointment_time: datetime | None = None,
) -> bool:
    """Set an appointment's status (cancelled, showed, noshow, booked) or time; False if none."""
    appointment = repository.appointment_by_ref(ctx.session, ctx.location.id, external_ref)
    if appointment is None:
        return False
    if status is not None:
        appointment.status = status
    if appointment_time is not None:
        appointment.appointment_time = appointment_time
    appointment.updated_at = ctx.clock.now()
    return True
