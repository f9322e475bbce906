"""The failure reason codes of check, deduct and restore (api-v2.md §4.5) and their precedence."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kotally.db.engine import Database
from kotally.db.models import IdempotencyRecord, LedgerEntry
from kotally.kit.clock import FrozenClock, isoformat
from kotally.ledger.expiry import sweep
from tests.factories import (
    Ledger,
    lot,
    make_config,
    rows,
    studio,
    update_config,
    update_location,
)

OPS = ["check", "deduct", "restore"]


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    return studio(db, clock)


def _call(ledger: Ledger, op: str, **fields: object) -> dict[str, object]:
    body: dict[str, object] = getattr(ledger, op)(**fields)
    return body


def _refused(body: dict[str, object], reason_code: str) -> None:
    assert (body["ok"], body["reason_code"]) == (False, reason_code), body


# --- BILLING_SUSPENDED -------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS)
def test_suspended_location_refuses_everything(
    ledger: Ledger, db: Database, clock: FrozenClock, op: str
) -> None:
    ledger.grant()
    ledger.deduct()
    update_location(db, clock, billing_status="suspended")

    _refused(_call(ledger, op), "BILLING_SUSPENDED")


@pytest.mark.parametrize("op", OPS)
def test_suspended_comes_before_an_unknown_config(
    ledger: Ledger, db: Database, clock: FrozenClock, op: str
) -> None:
    update_location(db, clock, billing_status="suspended")

    _refused(_call(ledger, op, product_config_id="pc_missing"), "BILLING_SUSPENDED")


def test_trialing_location_is_not_suspended(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    ledger.grant()
    update_location(db, clock, billing_status="trialing")

    assert ledger.deduct()["reason_code"] == "deducted"


def test_suspended_deduct_is_not_stored_and_its_retry_applies(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    ledger.grant()
    update_location(db, clock, billing_status="suspended")
    _refused(ledger.deduct(request_id="booking-1"), "BILLING_SUSPENDED")
    assert rows(db, IdempotencyRecord, IdempotencyRecord.request_id == "booking-1") == []

    update_location(db, clock, billing_status="active")
    retried = ledger.reply("deduct", request_id="booking-1")

    assert (retried.body["reason_code"], retried.replayed) == ("deducted", False)
    assert retried.body["balance_after"] == 9


def test_suspended_restore_is_not_stored_and_its_retry_applies(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    ledger.grant()
    ledger.deduct(external_ref="booking_1")
    update_location(db, clock, billing_status="suspended")
    _refused(ledger.restore(request_id="cancel-1", external_ref="booking_1"), "BILLING_SUSPENDED")

    update_location(db, clock, billing_status="active")
    retried = ledger.reply("restore", request_id="cancel-1", external_ref="booking_1")

    assert (retried.body["reason_code"], retried.replayed) == ("restored", False)
    assert retried.body["balance_after"] == 10


# --- CONFIG_NOT_FOUND --------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS)
def test_unknown_config(ledger: Ledger, op: str) -> None:
    ledger.grant()

    _refused(_call(ledger, op, product_config_id="pc_missing"), "CONFIG_NOT_FOUND")


@pytest.mark.parametrize("op", OPS)
def test_deactivated_config(ledger: Ledger, db: Database, clock: FrozenClock, op: str) -> None:
    ledger.grant()
    ledger.deduct(external_ref="booking_1")
    update_config(db, clock, active=False)

    _refused(_call(ledger, op, external_ref="booking_1"), "CONFIG_NOT_FOUND")


@pytest.mark.parametrize("op", OPS)
def test_calendar_linked_only_to_a_deactivated_config(
    ledger: Ledger, db: Database, clock: FrozenClock, op: str
) -> None:
    ledger.grant()
    update_config(db, clock, active=False)

    _refused(_call(ledger, op, product_config_id=None, calendar_id="cal_1"), "CONFIG_NOT_FOUND")


@pytest.mark.parametrize("op", OPS)
def test_calendar_linked_to_nothing(ledger: Ledger, op: str) -> None:
    ledger.grant()

    _refused(
        _call(ledger, op, product_config_id=None, calendar_id="cal_nowhere"), "CONFIG_NOT_FOUND"
    )


@pytest.mark.parametrize("op", OPS)
def test_config_not_found_comes_before_mismatch_and_unknown_contact(
    ledger: Ledger, op: str
) -> None:
    body = _call(
        ledger, op, product_config_id="pc_missing", calendar_id="cal_1", ghl_contact_id="nobody"
    )

    _refused(body, "CONFIG_NOT_FOUND")


# --- SERVICE_FAMILY_MISMATCH -------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS)
def test_config_not_linked_to_the_calendar(ledger: Ledger, op: str) -> None:
    ledger.grant()
    ledger.deduct(external_ref="booking_1")

    body = _call(ledger, op, calendar_id="cal_2", external_ref="booking_1")

    _refused(body, "SERVICE_FAMILY_MISMATCH")


@pytest.mark.parametrize("op", OPS)
def test_config_linked_to_the_calendar_is_no_mismatch(ledger: Ledger, op: str) -> None:
    ledger.grant()
    ledger.deduct(external_ref="booking_1")

    body = _call(ledger, op, calendar_id="cal_1", external_ref="booking_1")

    assert body["ok"] is True, body


@pytest.mark.parametrize("op", OPS)
def test_mismatch_comes_before_an_unknown_contact(ledger: Ledger, op: str) -> None:
    body = _call(ledger, op, calendar_id="cal_2", ghl_contact_id="nobody")

    _refused(body, "SERVICE_FAMILY_MISMATCH")


@pytest.mark.parametrize("op", OPS)
def test_calendar_alone_with_usable_credits_only_on_another_config(ledger: Ledger, op: str) -> None:
    ledger.grant(product_config_id="pc_package_1")

    body = _call(ledger, op, product_config_id=None, calendar_id="cal_2")

    _refused(body, "SERVICE_FAMILY_MISMATCH")


@pytest.mark.parametrize("op", OPS)
def test_calendar_alone_with_only_exhausted_credits_elsewhere_is_no_entitlement(
    ledger: Ledger, op: str
) -> None:
    ledger.grant(product_config_id="pc_package_1")
    ledger.deduct(amount=10)

    body = _call(ledger, op, product_config_id=None, calendar_id="cal_2")

    _refused(body, "NO_ENTITLEMENT")


def test_config_alone_with_credits_on_another_config_is_no_entitlement(ledger: Ledger) -> None:
    ledger.grant(product_config_id="pc_package_1")

    _refused(ledger.deduct(product_config_id="pc_other"), "NO_ENTITLEMENT")


# --- NO_ENTITLEMENT ----------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS)
def test_unknown_contact(ledger: Ledger, op: str) -> None:
    ledger.grant()

    _refused(_call(ledger, op, ghl_contact_id="ghl_stranger"), "NO_ENTITLEMENT")


@pytest.mark.parametrize("op", OPS)
def test_contact_without_lots_in_the_selection(ledger: Ledger, op: str) -> None:
    ledger.grant(product_config_id="pc_other")

    _refused(_call(ledger, op, product_config_id="pc_package_1"), "NO_ENTITLEMENT")


@pytest.mark.parametrize("op", ["check", "deduct"])
def test_only_expired_lots_is_no_entitlement_not_insufficient(
    ledger: Ledger, db: Database, clock: FrozenClock, op: str
) -> None:
    make_config(db, clock, "pc_short", credits=3, expiry_days=10)
    ledger.grant(product_config_id="pc_short")
    clock.advance(timedelta(days=10))

    _refused(_call(ledger, op, product_config_id="pc_short"), "NO_ENTITLEMENT")


# --- INSUFFICIENT_CREDITS ----------------------------------------------------------------------


@pytest.mark.parametrize("op", ["check", "deduct"])
def test_asking_for_more_than_the_balance(ledger: Ledger, op: str) -> None:
    ledger.grant()

    body = _call(ledger, op, amount=11)

    _refused(body, "INSUFFICIENT_CREDITS")
    assert body["balance_available"] == 10


@pytest.mark.parametrize("op", ["check", "deduct"])
def test_exhausted_lots_have_zero_available(ledger: Ledger, op: str) -> None:
    ledger.grant()
    ledger.deduct(amount=10)

    body = _call(ledger, op)

    _refused(body, "INSUFFICIENT_CREDITS")
    assert body["balance_available"] == 0


def test_balance_available_sums_the_lots_of_a_calendar(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    update_config(db, clock, "pc_other", calendars=["cal_1"])
    ledger.grant(product_config_id="pc_package_1")
    ledger.grant(product_config_id="pc_other")

    body = ledger.deduct(product_config_id=None, calendar_id="cal_1", amount=16)

    _refused(body, "INSUFFICIENT_CREDITS")
    assert body["balance_available"] == 15


def test_an_insufficient_deduct_changes_nothing(ledger: Ledger, db: Database) -> None:
    granted = ledger.grant()

    ledger.deduct(amount=11)

    assert lot(db, granted["entitlement_id"]).credits_remaining == 10
    assert [e.kind for e in rows(db, LedgerEntry)] == ["grant"]


# --- CANCELLATION_WINDOW_EXPIRED ---------------------------------------------------------------


def test_restore_inside_the_window_by_request_time(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    update_location(db, clock, cancellation_window_hours=24)
    ledger.grant()
    ledger.deduct()

    # now <= appointment_time - window: the boundary itself is still inside.
    at = isoformat(clock.now() + timedelta(hours=24))
    assert ledger.restore(appointment_time=at)["reason_code"] == "restored"


def test_restore_outside_the_window_by_request_time(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    update_location(db, clock, cancellation_window_hours=24)
    granted = ledger.grant()
    ledger.deduct()

    at = isoformat(clock.now() + timedelta(hours=23, minutes=59))
    _refused(ledger.restore(appointment_time=at), "CANCELLATION_WINDOW_EXPIRED")
    assert lot(db, granted["entitlement_id"]).credits_remaining == 9


def test_restore_outside_the_window_of_the_recorded_appointment(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    update_location(db, clock, cancellation_window_hours=24)
    ledger.grant()
    ledger.deduct(
        external_ref="booking_1", appointment_time=isoformat(clock.now() + timedelta(hours=48))
    )
    clock.advance(timedelta(hours=24, seconds=1))

    _refused(ledger.restore(external_ref="booking_1"), "CANCELLATION_WINDOW_EXPIRED")


def test_restore_inside_the_window_of_the_recorded_appointment(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    update_location(db, clock, cancellation_window_hours=24)
    ledger.grant()
    ledger.deduct(
        external_ref="booking_1", appointment_time=isoformat(clock.now() + timedelta(hours=48))
    )
    clock.advance(timedelta(hours=24))

    assert ledger.restore(external_ref="booking_1")["reason_code"] == "restored"


def test_no_window_set_means_no_window_check(ledger: Ledger, clock: FrozenClock) -> None:
    ledger.grant()
    ledger.deduct(external_ref="booking_1")

    past = isoformat(clock.now() - timedelta(days=3))
    body = ledger.restore(external_ref="booking_1", appointment_time=past)

    assert body["reason_code"] == "restored"


def test_window_without_a_known_appointment_time_is_not_checked(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    update_location(db, clock, cancellation_window_hours=24)
    ledger.grant()
    ledger.deduct(external_ref="booking_1")

    assert ledger.restore(external_ref="booking_1")["reason_code"] == "restored"


def test_no_entitlement_comes_before_the_window(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    update_location(db, clock, cancellation_window_hours=24)

    body = ledger.restore(ghl_contact_id="ghl_stranger", appointment_time=isoformat(clock.now()))

    _refused(body, "NO_ENTITLEMENT")


def test_window_comes_before_nothing_to_restore(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    update_location(db, clock, cancellation_window_hours=24)
    ledger.grant()

    body = ledger.restore(amount=5, appointment_time=isoformat(clock.now()))

    _refused(body, "CANCELLATION_WINDOW_EXPIRED")


# --- NOTHING_TO_RESTORE ------------------------------------------------------------------------


def test_restore_more_than_was_deducted_for_the_ref(ledger: Ledger, db: Database) -> None:
    granted = ledger.grant()
    ledger.deduct(amount=2, external_ref="booking_1")

    body = ledger.restore(amount=3, external_ref="booking_1")

    _refused(body, "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 2
    assert lot(db, granted["entitlement_id"]).credits_remaining == 8
    assert rows(db, LedgerEntry, LedgerEntry.kind == "restore") == []


def test_restore_caps_at_deducted_minus_already_restored(ledger: Ledger) -> None:
    ledger.grant()
    ledger.deduct(amount=2, external_ref="booking_1")
    assert ledger.restore(amount=1, external_ref="booking_1")["reason_code"] == "restored"

    body = ledger.restore(amount=2, external_ref="booking_1")

    _refused(body, "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 1


def test_restore_of_a_ref_with_no_deduction(ledger: Ledger) -> None:
    ledger.grant()
    ledger.deduct(amount=2, external_ref="booking_1")

    body = ledger.restore(external_ref="booking_other")

    _refused(body, "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 0


def test_restore_of_a_ref_only_another_contact_deducted(ledger: Ledger) -> None:
    ledger.grant(ghl_contact_id="ghl_a")
    ledger.grant(ghl_contact_id="ghl_b")
    ledger.deduct(ghl_contact_id="ghl_a", external_ref="booking_1")
    ledger.deduct(ghl_contact_id="ghl_b", external_ref="booking_2")

    body = ledger.restore(ghl_contact_id="ghl_b", external_ref="booking_1")

    _refused(body, "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 0


def test_restore_without_ref_into_full_lots(ledger: Ledger) -> None:
    ledger.grant()

    body = ledger.restore()

    _refused(body, "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 0


def test_restore_without_ref_beyond_the_room_is_all_or_nothing(
    ledger: Ledger, db: Database
) -> None:
    granted = ledger.grant()
    ledger.deduct(amount=3)

    body = ledger.restore(amount=4)

    _refused(body, "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 3
    assert lot(db, granted["entitlement_id"]).credits_remaining == 7


def test_nothing_to_restore_comes_before_entitlement_expired(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_short", credits=3, expiry_days=10)
    ledger.grant(product_config_id="pc_short")
    ledger.deduct(product_config_id="pc_short", amount=2, external_ref="booking_1")
    clock.advance(timedelta(days=11))

    body = ledger.restore(product_config_id="pc_short", amount=3, external_ref="booking_1")

    _refused(body, "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 0


# --- ENTITLEMENT_EXPIRED -----------------------------------------------------------------------


@pytest.mark.parametrize("swept", [False, True])
def test_restore_by_ref_into_an_expired_lot(
    ledger: Ledger, db: Database, clock: FrozenClock, swept: bool
) -> None:
    make_config(db, clock, "pc_short", credits=3, expiry_days=10)
    ledger.grant(product_config_id="pc_short")
    ledger.deduct(product_config_id="pc_short", amount=2, external_ref="booking_1")
    clock.advance(timedelta(days=10))
    if swept:
        sweep(db, clock)

    body = ledger.restore(product_config_id="pc_short", amount=2, external_ref="booking_1")

    _refused(body, "ENTITLEMENT_EXPIRED")
    assert rows(db, LedgerEntry, LedgerEntry.kind == "restore") == []


def test_restore_by_ref_goes_only_to_the_lots_still_live(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_short", credits=1, expiry_days=10, calendars=["cal_1"])
    short = ledger.grant(product_config_id="pc_short")["entitlement_id"]
    long = ledger.grant(product_config_id="pc_package_1")["entitlement_id"]
    drawn = ledger.deduct(product_config_id=None, calendar_id="cal_1", amount=3, external_ref="b1")
    assert drawn["consumed"] == [
        {"entitlement_id": short, "amount": 1},
        {"entitlement_id": long, "amount": 2},
    ]
    clock.advance(timedelta(days=10))

    too_much = ledger.restore(
        product_config_id=None, calendar_id="cal_1", amount=3, external_ref="b1"
    )
    _refused(too_much, "NOTHING_TO_RESTORE")
    assert too_much["credits_restorable"] == 2

    restored = ledger.restore(
        product_config_id=None, calendar_id="cal_1", amount=2, external_ref="b1"
    )
    assert restored["reason_code"] == "restored"
    assert restored["entitlement_id"] == long
    assert restored["balance_after"] == 10


def test_restore_without_ref_when_every_lot_has_expired(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_short", credits=3, expiry_days=10)
    ledger.grant(product_config_id="pc_short")
    ledger.deduct(product_config_id="pc_short", amount=2)
    clock.advance(timedelta(days=10))

    _refused(ledger.restore(product_config_id="pc_short"), "ENTITLEMENT_EXPIRED")
