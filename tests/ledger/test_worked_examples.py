"""Whole credit stories, end to end through the engine."""

from __future__ import annotations

from datetime import timedelta

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from kotally.ledger.expiry import sweep
from kotally.ledger.verify import verify
from tests.factories import Ledger, make_config, make_location


def test_published_examples(db: Database, clock: FrozenClock) -> None:
    make_location(db, clock)
    make_config(db, clock)
    ledger = Ledger(db, clock)

    granted = ledger.grant(
        request_id="grant_req_123",
        external_payment_id="payment_123",
        amount_cents=9900,
        currency="USD",
        paid_at="2026-04-16T00:00:00.000Z",
    )
    assert granted["reason_code"] == "grant_applied"
    assert granted["credits_granted"] == 10
    assert granted["balance_after"] == 10

    checked = ledger.check(amount=1)
    assert checked == {**checked, "ok": True, "reason_code": "eligible", "balance_after": 9}

    deducted = ledger.deduct(request_id="booking-123-deduct", amount=1, external_ref="booking_123")
    assert deducted["reason_code"] == "deducted"
    assert deducted["balance_after"] == 9
    assert deducted["entitlement_id"] == granted["entitlement_id"]

    restored = ledger.restore(
        request_id="booking-123-restore",
        amount=1,
        external_ref="booking_123",
        appointment_time="2026-05-01T10:00:00.000Z",
    )
    assert restored["reason_code"] == "restored"
    assert restored["balance_after"] == 10

    with db.unit_of_work(write=False) as session:
        assert verify(session) == []


def test_two_lots_consumed_by_expiry_then_restored_by_ref_then_expired(
    db: Database, clock: FrozenClock
) -> None:
    make_location(db, clock)
    make_config(db, clock, "pc_short", credits=3, expiry_days=10)
    make_config(db, clock, "pc_long", credits=5, expiry_days=30, calendars=["cal_yoga"])
    with db.unit_of_work() as session:
        from kotally.configs import service as configs

        configs.update(
            session, clock, location_id="loc_1", config_id="pc_short", calendars=["cal_yoga"]
        )
    ledger = Ledger(db, clock)
    long_lot = ledger.grant(product_config_id="pc_long")["entitlement_id"]
    short_lot = ledger.grant(product_config_id="pc_short")["entitlement_id"]

    # 4 credits by calendar: 3 from the lot expiring first, then 1 from the later one.
    deducted = ledger.deduct(
        product_config_id=None, calendar_id="cal_yoga", amount=4, external_ref="class_1"
    )
    assert deducted["reason_code"] == "deducted"
    assert deducted["consumed"] == [
        {"entitlement_id": short_lot, "amount": 3},
        {"entitlement_id": long_lot, "amount": 1},
    ]
    assert deducted["entitlement_id"] == short_lot
    assert deducted["balance_after"] == 4

    # Restoring 2 by ref goes to the most recent draw first (the long lot), then the short one.
    restored = ledger.restore(
        product_config_id=None, calendar_id="cal_yoga", amount=2, external_ref="class_1"
    )
    assert restored["reason_code"] == "restored"
    assert restored["entitlement_id"] == long_lot
    assert restored["balance_after"] == 6

    # After 10 days the short lot is no longer live, even before a sweep.
    clock.advance(timedelta(days=10))
    assert ledger.check(product_config_id=None, calendar_id="cal_yoga")["balance_after"] == 4
    result = sweep(db, clock)
    assert (result.lots_expired, result.credits_expired) == (1, 1)

    # What is left of class_1 came from the now-expired lot.
    refused = ledger.restore(
        product_config_id=None, calendar_id="cal_yoga", amount=2, external_ref="class_1"
    )
    assert refused["reason_code"] == "ENTITLEMENT_EXPIRED"

    with db.unit_of_work(write=False) as session:
        assert verify(session) == []
