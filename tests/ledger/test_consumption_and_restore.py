"""Which lots a deduction draws on, which lots a restore gives back to, and appointments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kotally.db.engine import Database
from kotally.db.models import Appointment, LedgerEntry
from kotally.kit.clock import FrozenClock, isoformat
from tests.factories import Ledger, lot, make_config, make_location, rows


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    """loc_1; on calendar cal_x: pc_10 (expires after 10 days), pc_30 (30 days), pc_never."""
    make_location(db, clock)
    make_config(db, clock, "pc_10", credits=5, expiry_days=10, calendars=["cal_x"])
    make_config(db, clock, "pc_30", credits=5, expiry_days=30, calendars=["cal_x"])
    make_config(db, clock, "pc_never", credits=5, calendars=["cal_x"])
    return Ledger(db, clock)


def _grant(ledger: Ledger, config_id: str, **fields: object) -> str:
    body = ledger.grant(product_config_id=config_id, **fields)
    assert body["reason_code"] == "grant_applied", body
    entitlement_id: str = body["entitlement_id"]
    return entitlement_id


def _by_calendar(**fields: object) -> dict[str, object]:
    return {"product_config_id": None, "calendar_id": "cal_x", **fields}


def test_consumption_order_expiry_then_created_at_then_id_never_expiring_last(
    ledger: Ledger, clock: FrozenClock
) -> None:
    start = isoformat(clock.now())
    day_before = isoformat(clock.now() - timedelta(days=1))
    never = _grant(ledger, "pc_never")
    late_expiry = _grant(ledger, "pc_30")
    same_expiry_older = _grant(ledger, "pc_10", paid_at=start)
    clock.advance(timedelta(hours=1))
    same_expiry_newer = _grant(ledger, "pc_10", paid_at=start)
    twins = sorted(_grant(ledger, "pc_10", paid_at=day_before) for _ in range(2))

    body = ledger.deduct(**_by_calendar(amount=30))

    expected = [*twins, same_expiry_older, same_expiry_newer, late_expiry, never]
    assert [c["entitlement_id"] for c in body["consumed"]] == expected
    assert [c["amount"] for c in body["consumed"]] == [5] * 6
    assert body["entitlement_id"] == twins[0]
    assert body["balance_after"] == 0


def test_deduction_spans_lots_with_one_entry_each(ledger: Ledger, db: Database) -> None:
    never = _grant(ledger, "pc_never")
    soon = _grant(ledger, "pc_10")

    body = ledger.deduct(**_by_calendar(amount=7, external_ref="class_1"))

    assert body["consumed"] == [
        {"entitlement_id": soon, "amount": 5},
        {"entitlement_id": never, "amount": 2},
    ]
    assert body["balance_after"] == 3
    entries = rows(db, LedgerEntry, LedgerEntry.kind == "deduct")
    assert sorted((str(e.entitlement_id), e.amount, e.balance_after) for e in entries) == sorted(
        [(soon, -5, 0), (never, -2, 3)]
    )
    assert {e.correlation_id for e in entries} == {body["correlation_id"]}
    assert {e.external_ref for e in entries} == {"class_1"}
    assert (lot(db, soon).status, lot(db, never).status) == ("exhausted", "active")


def test_a_lot_past_its_expiry_is_not_drawn_on(ledger: Ledger, clock: FrozenClock) -> None:
    _grant(ledger, "pc_10")
    later = _grant(ledger, "pc_30")
    clock.advance(timedelta(days=10))

    body = ledger.deduct(**_by_calendar(amount=2))

    assert body["consumed"] == [{"entitlement_id": later, "amount": 2}]
    assert body["balance_after"] == 3


def test_restore_without_ref_goes_to_the_latest_expiry_first(ledger: Ledger, db: Database) -> None:
    soon = _grant(ledger, "pc_10")
    later = _grant(ledger, "pc_30")
    never = _grant(ledger, "pc_never")
    ledger.deduct(**_by_calendar(amount=12))  # 5 soon, 5 later, 2 never

    first = ledger.restore(**_by_calendar(amount=1))
    second = ledger.restore(**_by_calendar(amount=4))

    assert (first["entitlement_id"], first["balance_after"]) == (never, 4)
    # never has room for 1 only (never above credits_granted); the rest goes to `later`.
    assert (second["entitlement_id"], second["balance_after"]) == (never, 8)
    assert [lot(db, i).credits_remaining for i in (soon, later, never)] == [0, 3, 5]
    assert lot(db, later).status == "active"


def test_restore_without_ref_is_all_or_nothing(ledger: Ledger, db: Database) -> None:
    soon = _grant(ledger, "pc_10")
    later = _grant(ledger, "pc_30")
    ledger.deduct(**_by_calendar(amount=7))  # room: 5 on soon, 2 on later

    body = ledger.restore(**_by_calendar(amount=8))

    assert (body["reason_code"], body["credits_restorable"]) == ("NOTHING_TO_RESTORE", 7)
    assert [lot(db, i).credits_remaining for i in (soon, later)] == [0, 3]
    assert ledger.restore(**_by_calendar(amount=7))["balance_after"] == 10


def test_restore_without_ref_skips_lots_past_their_expiry(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    soon = _grant(ledger, "pc_10")
    later = _grant(ledger, "pc_30")
    ledger.deduct(**_by_calendar(amount=7))
    clock.advance(timedelta(days=10))

    refused = ledger.restore(**_by_calendar(amount=3))
    restored = ledger.restore(**_by_calendar(amount=2))

    assert (refused["reason_code"], refused["credits_restorable"]) == ("NOTHING_TO_RESTORE", 2)
    assert (restored["entitlement_id"], restored["balance_after"]) == (later, 5)
    assert lot(db, soon).credits_remaining == 0


def test_restore_by_ref_never_lifts_a_lot_above_its_grant(ledger: Ledger, db: Database) -> None:
    never = _grant(ledger, "pc_never")
    ledger.deduct(product_config_id="pc_never", amount=2, external_ref="class_1")
    ledger.restore(product_config_id="pc_never", amount=2)  # without ref: the lot is full again

    body = ledger.restore(product_config_id="pc_never", amount=1, external_ref="class_1")

    assert (body["reason_code"], body["credits_restorable"]) == ("NOTHING_TO_RESTORE", 0)
    assert lot(db, never).credits_remaining == 5


def test_restore_by_ref_returns_to_the_lots_it_drew_on(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    soon = _grant(ledger, "pc_10")
    later = _grant(ledger, "pc_30")
    ledger.deduct(**_by_calendar(amount=3, external_ref="class_1"))  # 3 from soon
    ledger.deduct(**_by_calendar(amount=4, external_ref="class_2"))  # 2 soon, 2 later

    body = ledger.restore(**_by_calendar(amount=3, external_ref="class_1"))

    assert (body["entitlement_id"], body["balance_after"]) == (soon, 6)
    assert [lot(db, i).credits_remaining for i in (soon, later)] == [3, 3]
    assert lot(db, soon).status == "active"


def test_deduct_with_ref_records_the_appointment(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    _grant(ledger, "pc_30")
    ledger.deduct(
        **_by_calendar(
            amount=2, external_ref="booking_1", appointment_time="2026-05-01T12:00:00+02:00"
        )
    )

    [appointment] = rows(db, Appointment)
    assert (appointment.external_ref, appointment.calendar_id, appointment.status) == (
        "booking_1",
        "cal_x",
        "booked",
    )
    assert appointment.appointment_time == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert (appointment.credits_deducted, appointment.credits_restored) == (2, 0)
    [entry] = rows(db, LedgerEntry, LedgerEntry.kind == "deduct")
    assert entry.appointment_time == appointment.appointment_time


def test_deduct_by_config_records_its_sole_calendar(ledger: Ledger, db: Database) -> None:
    _grant(ledger, "pc_30")

    ledger.deduct(product_config_id="pc_30", external_ref="booking_1")

    assert [a.calendar_id for a in rows(db, Appointment)] == ["cal_x"]


def test_deduct_without_ref_records_no_appointment(ledger: Ledger, db: Database) -> None:
    _grant(ledger, "pc_30")

    ledger.deduct(product_config_id="pc_30")

    assert rows(db, Appointment) == []


def test_second_deduct_for_a_booking_adds_to_it(ledger: Ledger, db: Database) -> None:
    _grant(ledger, "pc_30")
    ledger.deduct(**_by_calendar(external_ref="booking_1"))

    ledger.deduct(
        **_by_calendar(amount=2, external_ref="booking_1", appointment_time="2026-05-02T09:00:00Z")
    )

    [appointment] = rows(db, Appointment)
    assert appointment.credits_deducted == 3
    assert appointment.appointment_time == datetime(2026, 5, 2, 9, 0, tzinfo=UTC)


def test_appointment_is_cancelled_once_everything_is_back(ledger: Ledger, db: Database) -> None:
    _grant(ledger, "pc_30")
    ledger.deduct(**_by_calendar(amount=2, external_ref="booking_1"))

    ledger.restore(**_by_calendar(amount=1, external_ref="booking_1"))
    [partly] = rows(db, Appointment)
    ledger.restore(**_by_calendar(amount=1, external_ref="booking_1"))
    [fully] = rows(db, Appointment)

    assert (partly.status, partly.credits_restored) == ("booked", 1)
    assert (fully.status, fully.credits_deducted, fully.credits_restored) == ("cancelled", 2, 2)
