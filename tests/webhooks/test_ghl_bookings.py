"""GHL bookings: deduct on booking, restore on cancellation, marks, order by dateUpdated (§2-3)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from kotally.db.models import Appointment, GhlAppointment, LedgerEntry
from kotally.kit.clock import FrozenClock
from tests.factories import make_config, rows, update_location
from tests.webhooks.conftest import CONTACT, Hooks, appointment


class Appt:
    """One GHL appointment's events, each dateUpdated a minute after the last."""

    def __init__(self, hooks: Hooks, clock: FrozenClock, appt_id: str = "appt_1", **kw: Any):
        self.hooks, self.clock, self.id, self.kw = hooks, clock, appt_id, kw
        self.start = clock.now() + timedelta(days=3)
        self.updated = clock.now()

    def event(self, type_: str, status: str, **kw: Any) -> dict[str, Any]:
        self.updated += timedelta(minutes=1)
        fields = {"start": self.start, "updated": self.updated, **self.kw, **kw}
        return appointment(type_, self.id, status, **fields)

    def send(
        self, type_: str = "AppointmentUpdate", status: str = "confirmed", **kw: Any
    ) -> dict[str, Any]:
        return self.hooks.send(self.event(type_, status, **kw))

    def create(self, **kw: Any) -> dict[str, Any]:
        return self.send("AppointmentCreate", "confirmed", **kw)


def _row(hooks: Hooks, appt_id: str = "appt_1") -> Appointment:
    [row] = rows(hooks.db, Appointment, Appointment.external_ref == appt_id)
    return row


def test_a_booking_deducts_one_credit_by_calendar(hooks: Hooks, clock: FrozenClock) -> None:
    hooks.ledger.grant()
    appt = Appt(hooks, clock)
    body = appt.create()
    assert (body["status"], body["outcome"]) == ("processed", "deducted")
    assert hooks.balance() == 9
    row = _row(hooks)
    assert (row.status, row.credits_deducted, row.calendar_id) == ("booked", 1, "cal_1")
    assert row.appointment_time == appt.start
    [entry] = rows(hooks.db, LedgerEntry, LedgerEntry.kind == "deduct")
    assert entry.actor == "webhook:ghl"
    assert entry.correlation_id == body["correlation_id"]
    assert entry.request_id == "ghl:appt:appt_1:deduct:1"
    assert entry.external_ref == "appt_1"
    hooks.clean()


def test_a_second_create_is_a_duplicate_event(hooks: Hooks, clock: FrozenClock) -> None:
    hooks.ledger.grant()
    appt = Appt(hooks, clock)
    appt.create()
    body = appt.create()  # a new webhookId, the same appointment
    assert (body["status"], body["outcome"]) == ("refused", "DUPLICATE_EVENT")
    assert hooks.balance() == 9


@pytest.mark.parametrize("credits", [None, 0])
def test_a_booking_without_credits_is_refused_and_shown(
    hooks: Hooks, clock: FrozenClock, credits: int | None
) -> None:
    if credits == 0:  # a contact whose only credit is spent
        make_config(hooks.db, clock, "pc_one", credits=1, calendars=["cal_1"])
        hooks.ledger.grant(product_config_id="pc_one")
        hooks.ledger.deduct(product_config_id="pc_one")
    else:
        hooks.ledger.grant(ghl_contact_id="someone_else")
        hooks.ledger.grant(
            external_contact_id="ext_1", ghl_contact_id=CONTACT, product_config_id="pc_package_1"
        )
        hooks.ledger.deduct(ghl_contact_id=CONTACT, amount=10)
    body = Appt(hooks, clock).create()
    assert body["reason_code"] == "event_processed"
    assert (body["status"], body["outcome"]) == ("refused", "INSUFFICIENT_CREDITS")
    row = _row(hooks)
    assert (row.status, row.credits_deducted, row.refusal) == ("booked", 0, "INSUFFICIENT_CREDITS")
    hooks.clean()


def test_an_unknown_contact_is_refused_without_an_appointment(
    hooks: Hooks, clock: FrozenClock
) -> None:
    body = Appt(hooks, clock, contact="ghl_nobody").create()
    assert (body["status"], body["outcome"]) == ("refused", "NO_ENTITLEMENT")
    assert rows(hooks.db, Appointment) == []


def test_an_unlinked_calendar_is_ignored(hooks: Hooks, clock: FrozenClock) -> None:
    hooks.ledger.grant()
    body = Appt(hooks, clock, calendar="cal_yoga").create()
    assert body["reason_code"] == "event_ignored"
    assert body["outcome"] == "CALENDAR_NOT_LINKED"
    assert hooks.balance() == 10


def test_cancel_inside_the_window_restores(hooks: Hooks, clock: FrozenClock) -> None:
    hooks.ledger.grant()
    appt = Appt(hooks, clock)
    appt.create()
    body = appt.send(status="cancelled")
    assert (body["status"], body["outcome"]) == ("processed", "restored")
    assert hooks.balance() == 10
    row = _row(hooks)
    assert (row.status, row.credits_restored) == ("cancelled", 1)
    # Booked again after the cancellation: a new deduct (n + 1).
    again = appt.send(status="confirmed")
    assert again["outcome"] == "deducted"
    [state] = rows(hooks.db, GhlAppointment)
    assert (state.deducts, state.holding) == (2, True)
    assert hooks.balance() == 9
    assert _row(hooks).status == "booked"
    hooks.clean()


@pytest.mark.parametrize("how", ["cancelled", "delete"])
def test_cancel_outside_the_window_keeps_the_credit(
    hooks: Hooks, clock: FrozenClock, how: str
) -> None:
    hooks.ledger.grant()
    appt = Appt(hooks, clock)
    appt.start = clock.now() + timedelta(hours=WINDOW_INSIDE)
    appt.create()
    if how == "delete":
        body = hooks.send(appt.event("AppointmentDelete", "confirmed"))
    else:
        body = appt.send(status="cancelled")
    assert (body["status"], body["outcome"]) == ("refused", "CANCELLATION_WINDOW_EXPIRED")
    assert hooks.balance() == 9
    row = _row(hooks)
    assert (row.status, row.credits_deducted, row.credits_restored) == ("cancelled", 1, 0)
    hooks.clean()


WINDOW_INSIDE = 5  # hours before the start: inside the 24 h window, too late to cancel


def test_delete_restores_inside_the_window(hooks: Hooks, clock: FrozenClock) -> None:
    hooks.ledger.grant()
    appt = Appt(hooks, clock)
    appt.create()
    body = hooks.send(appt.event("AppointmentDelete", "confirmed"))
    assert body["outcome"] == "restored"
    assert hooks.balance() == 10


@pytest.mark.parametrize("status", ["showed", "noshow"])
def test_showed_and_noshow_keep_the_credit(hooks: Hooks, clock: FrozenClock, status: str) -> None:
    hooks.ledger.grant()
    appt = Appt(hooks, clock)
    appt.create()
    body = appt.send(status=status)
    assert (body["status"], body["outcome"]) == ("processed", status)
    assert hooks.balance() == 9
    assert _row(hooks).status == status


def test_a_reschedule_moves_the_appointment(hooks: Hooks, clock: FrozenClock) -> None:
    hooks.ledger.grant()
    appt = Appt(hooks, clock)
    appt.create()
    later = appt.start + timedelta(days=7)
    body = appt.send(status="confirmed", start=later)
    assert body["outcome"] == "rescheduled"
    assert _row(hooks).appointment_time == later
    assert hooks.balance() == 9
    # The window is measured against the new start: 5 days out, a cancel restores.
    assert appt.send(status="cancelled", start=later)["outcome"] == "restored"


def test_an_older_update_is_stale(hooks: Hooks, clock: FrozenClock) -> None:
    hooks.ledger.grant()
    appt = Appt(hooks, clock)
    create = appt.event("AppointmentCreate", "confirmed")
    cancel = appt.event("AppointmentUpdate", "cancelled")
    hooks.send(create)
    hooks.send(cancel)
    older = appointment(
        "AppointmentUpdate",
        "appt_1",
        "confirmed",
        start=appt.start,
        updated=datetime.fromisoformat(create["appointment"]["dateUpdated"]),
    )
    body = hooks.send(older)
    assert (body["reason_code"], body["outcome"]) == ("event_ignored", "STALE_EVENT")
    assert hooks.balance() == 10


def test_a_cancellation_before_its_booking_makes_the_booking_stale(
    hooks: Hooks, clock: FrozenClock
) -> None:
    hooks.ledger.grant()
    appt = Appt(hooks, clock)
    create = appt.event("AppointmentCreate", "confirmed")
    cancel = appt.event("AppointmentUpdate", "cancelled")
    first = hooks.send(cancel)
    assert first["status"] == "ignored"
    late = hooks.send(create)
    assert (late["status"], late["outcome"]) == ("ignored", "STALE_EVENT")
    assert hooks.balance() == 10
    assert rows(hooks.db, LedgerEntry, LedgerEntry.kind == "deduct") == []


def test_uninstalled_locations_are_ignored_until_installed_again(
    hooks: Hooks, clock: FrozenClock
) -> None:
    hooks.ledger.grant()
    base = {"appId": "app_1", "locationId": "loc_1", "companyId": "comp_1"}
    assert hooks.send({"type": "UNINSTALL", **base})["outcome"] == "location_uninstalled"
    body = Appt(hooks, clock).create()
    assert (body["reason_code"], body["outcome"]) == ("event_ignored", "location_uninstalled")
    assert hooks.balance() == 10
    assert hooks.send({"type": "INSTALL", **base})["outcome"] == "location_installed"
    assert Appt(hooks, clock, "appt_2").create()["outcome"] == "deducted"


def test_install_creates_an_unknown_location(hooks: Hooks) -> None:
    body = hooks.send(
        {"type": "INSTALL", "appId": "app_1", "locationId": "ghl_loc_9", "locationName": "Pilates"}
    )
    assert (body["status"], body["outcome"]) == ("processed", "location_created")
    from kotally.db.models import Location

    [loc] = rows(hooks.db, Location, Location.id == "ghl_loc_9")
    assert (loc.name, loc.billing_status) == ("Pilates", "trialing")
    assert loc.ghl_installed_at is not None


def test_billing_suspended_refuses_the_booking(hooks: Hooks, clock: FrozenClock) -> None:
    hooks.ledger.grant()
    update_location(hooks.db, clock, billing_status="suspended")
    body = Appt(hooks, clock).create()
    assert (body["status"], body["outcome"]) == ("refused", "BILLING_SUSPENDED")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"appointment": "x"}, "appointment"),
        ({"appointment": None}, "appointment"),
        (
            {"appointment": {"id": "a", "appointmentStatus": "booked"}},
            "appointment.appointmentStatus",
        ),
        ({"appointment": {"appointmentStatus": "new"}}, "appointment.id"),
        ({"appointment": {"id": 7, "appointmentStatus": "new"}}, "appointment.id"),
        (
            {"appointment": {"id": "a", "appointmentStatus": "new", "calendarId": "cal_1"}},
            "appointment.contactId",
        ),
        (
            {
                "appointment": {
                    "id": "a",
                    "appointmentStatus": "new",
                    "contactId": "c",
                    "calendarId": ["x"],
                }
            },
            "appointment.calendarId",
        ),
        (
            {"appointment": {"id": "a", "appointmentStatus": "new", "startTime": "tomorrow"}},
            "appointment.startTime",
        ),
        ({"appointment": {"id": "a\u0000", "appointmentStatus": "new"}}, "appointment.id"),
    ],
)
def test_bad_fields_are_stored_refused_and_apply_nothing(
    hooks: Hooks, clock: FrozenClock, change: dict[str, Any], field: str
) -> None:
    hooks.ledger.grant()
    event = {**Appt(hooks, clock).event("AppointmentCreate", "confirmed"), **change}
    body = hooks.send(event)
    assert (body["status"], body["outcome"]) == ("refused", "INVALID_PAYLOAD")
    [stored] = hooks.events()
    assert stored.details["field"] == field
    assert hooks.balance() == 10
    assert rows(hooks.db, GhlAppointment) == []
    hooks.clean()
