"""GHL appointments → deduct, restore, status (webhooks.md §3 Bookings, §2 ordering).

Each appointment's events are ordered by `dateUpdated` on its `ghl_appointments` row, which is
locked first, so the events of one appointment apply one at a time. The credit moves through
the ledger's deduct and restore, with request_ids derived from the appointment
(`ghl:appt:<id>:deduct:<n>`, `…:restore:<n>`): the same booking never deducts twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kotally.configs import repository as configs
from kotally.db.models import GhlAppointment
from kotally.ledger import appointments, repository
from kotally.ledger.restore import restore
from kotally.ledger.schemas import ContactRef, DeductRequest, RestoreRequest
from kotally.ledger.service import deduct
from kotally.webhooks.ghl.fields import (
    PayloadError,
    identifier,
    key,
    obj,
    required_identifier,
    time,
)
from kotally.webhooks.handling import EventContext, Result

BOOKED = ("new", "confirmed")
STATUSES = ("new", "confirmed", "cancelled", "showed", "noshow", "invalid")
TYPES = ("AppointmentCreate", "AppointmentUpdate", "AppointmentDelete")
_PATH = "appointment."


@dataclass(frozen=True)
class Booking:
    kind: str
    id: str
    status: str
    calendar_id: str | None
    contact_id: str | None
    start_time: datetime | None
    date_updated: datetime | None


def parse(kind: str, payload: dict[str, Any]) -> Booking:
    appt = obj(payload, "appointment")
    if appt is None:
        raise PayloadError("appointment", "is required")
    status = appt.get("appointmentStatus")
    if kind == "AppointmentDelete" and status is None:
        status = "cancelled"
    if status not in STATUSES:
        raise PayloadError(_PATH + "appointmentStatus", f"must be one of {', '.join(STATUSES)}")
    return Booking(
        kind=kind,
        id=required_identifier(appt, "id", _PATH),
        status=str(status),
        calendar_id=identifier(appt, "calendarId", _PATH),
        contact_id=identifier(appt, "contactId", _PATH),
        start_time=time(appt, "startTime", _PATH),
        date_updated=time(appt, "dateUpdated", _PATH),
    )


def handle(ctx: EventContext, kind: str, payload: dict[str, Any]) -> Result:
    booking = parse(kind, payload)
    state = _lock_state(ctx, booking.id)
    if (
        booking.date_updated is not None
        and state.date_updated is not None
        and booking.date_updated < state.date_updated
    ):
        return Result("ignored", "STALE_EVENT", details={"last_applied": str(state.date_updated)})
    if kind == "AppointmentDelete" or booking.status == "cancelled":
        result = _cancel(ctx, booking, state)
    elif booking.status in BOOKED:
        result = _book(ctx, booking, state)
    elif booking.status in ("showed", "noshow"):
        marked = appointments.mark(ctx.ledger(), booking.id, status=booking.status)
        result = Result("processed", booking.status) if marked else _not_booked()
    else:  # invalid: GHL's own flag of a bad booking; the credit is neither taken nor given
        result = Result("ignored", "status_not_handled")
    if booking.date_updated is not None:
        state.date_updated = booking.date_updated
    state.status = "cancelled" if kind == "AppointmentDelete" else booking.status
    if booking.start_time is not None:
        state.start_time = booking.start_time
    state.updated_at = ctx.clock.now()
    return result


def _not_booked() -> Result:
    return Result("ignored", "appointment_not_recorded")


def _lock_state(ctx: EventContext, appointment_id: str) -> GhlAppointment:
    session: Session = ctx.session
    builder = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        builder(GhlAppointment)
        .values(
            location_id=ctx.location.id,
            appointment_id=appointment_id,
            status="unknown",
            date_updated=None,
            start_time=None,
            deducts=0,
            holding=False,
            updated_at=ctx.clock.now(),
        )
        .on_conflict_do_nothing()
    )
    stmt = (
        select(GhlAppointment)
        .where(
            GhlAppointment.location_id == ctx.location.id,
            GhlAppointment.appointment_id == appointment_id,
        )
        .with_for_update()
    )
    return session.execute(stmt).scalar_one()


def _book(ctx: EventContext, booking: Booking, state: GhlAppointment) -> Result:
    if booking.calendar_id is None:
        raise PayloadError(_PATH + "calendarId", "is required")
    if booking.contact_id is None:
        raise PayloadError(_PATH + "contactId", "is required")
    ledger = ctx.ledger()
    if state.holding:
        moved = booking.start_time is not None and booking.start_time != state.start_time
        if moved:
            appointments.mark(ledger, booking.id, appointment_time=booking.start_time)
            return Result("processed", "rescheduled")
        if booking.kind == "AppointmentCreate":
            return Result("refused", "DUPLICATE_EVENT")
        return Result("ignored", "no_change")
    if not configs.active_for_link(ctx.session, ctx.location.id, "calendar", booking.calendar_id):
        return Result("ignored", "CALENDAR_NOT_LINKED")
    attempt = state.deducts + 1
    request_id = key("appt", booking.id, "deduct", attempt)
    req = DeductRequest.model_validate(
        {
            "location_id": ctx.location.id,
            "request_id": request_id,
            "ghl_contact_id": booking.contact_id,
            "calendar_id": booking.calendar_id,
            "amount": 1,
            "external_ref": booking.id,
            "appointment_time": _iso(booking.start_time),
        }
    )
    reply = deduct(ledger, req)
    state.deducts = attempt
    outcome = str(reply.body["reason_code"])
    if reply.body.get("ok"):
        state.holding = True
        return Result("processed", outcome, effects=[request_id])
    appointments.record_refused_booking(
        ledger,
        contact=ContactRef(value=booking.contact_id, field="ghl_contact_id"),
        external_ref=booking.id,
        calendar_id=booking.calendar_id,
        appointment_time=booking.start_time,
        refusal=outcome,
    )
    details = {k: reply.body[k] for k in ("balance_available",) if k in reply.body}
    return Result("refused", outcome, details=details)


def _cancel(ctx: EventContext, booking: Booking, state: GhlAppointment) -> Result:
    ledger = ctx.ledger()
    if not state.holding:
        appointments.mark(ledger, booking.id, status="cancelled")
        # Counts as applied: a booking older than this cancellation is stale (§2).
        return Result("ignored", "nothing_held")
    row = repository.appointment_by_ref(ctx.session, ctx.location.id, booking.id)
    calendar_id = booking.calendar_id or (row.calendar_id if row is not None else None)
    contact_id = booking.contact_id
    if calendar_id is None or contact_id is None:
        raise PayloadError(
            _PATH + ("calendarId" if calendar_id is None else "contactId"), "is required"
        )
    start = booking.start_time or state.start_time
    request_id = key("appt", booking.id, "restore", state.deducts)
    try:
        req = RestoreRequest.model_validate(
            {
                "location_id": ctx.location.id,
                "request_id": request_id,
                "ghl_contact_id": contact_id,
                "calendar_id": calendar_id,
                "amount": 1,
                "external_ref": booking.id,
                "appointment_time": _iso(start),
            }
        )
    except ValidationError as exc:  # pragma: no cover - every field was checked above
        raise PayloadError("appointment", str(exc)) from exc
    reply = restore(ledger, req)
    outcome = str(reply.body["reason_code"])
    if outcome != "BILLING_SUSPENDED":  # not stored: a later cancellation may still restore
        state.holding = False
    appointments.mark(ledger, booking.id, status="cancelled")
    if reply.body.get("ok"):
        return Result("processed", outcome, effects=[request_id])
    # CANCELLATION_WINDOW_EXPIRED: a late cancellation, the credit is kept.
    return Result("refused", outcome)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
