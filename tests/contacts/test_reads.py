"""The contact reads: lookup, forms, balances and tenant isolation (api-v2.md §4.6)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kotally.configs import service as configs
from kotally.contacts import reads, schemas
from kotally.db.engine import Database
from kotally.db.models import Entitlement, ProductConfig
from kotally.kit.clock import FrozenClock
from kotally.ledger.expiry import sweep
from tests.contacts.conftest import Reader, ReadFn
from tests.factories import Ledger, make_config, make_location

ALL_READS = [
    reads.contact,
    reads.summary,
    reads.credits,
    reads.entitlements,
    reads.appointments_upcoming,
    reads.appointments_past,
    reads.ledger,
    reads.payments,
    reads.timeline,
]
CONTACT_FIELDS = {"id", "ghl_contact_id", "external_contact_id", "email", "name", "created_at"}


@pytest.mark.parametrize("read_fn", ALL_READS, ids=lambda f: f.__name__)
def test_unknown_contact_reads_none(ledger: Ledger, read: Reader, read_fn: ReadFn) -> None:
    ledger.grant()
    assert read(read_fn, "nobody") is None
    assert read(read_fn, str(uuid.uuid4())) is None


def test_contact_is_found_by_uuid_ghl_id_or_external_id(ledger: Ledger, read: Reader) -> None:
    granted = ledger.grant(
        external_contact_id="ext_1", ghl_contact_id="ghl_1", email="m@example.com", name="M"
    )
    expected = {
        "contact": {
            "id": granted["contact_id"],
            "ghl_contact_id": "ghl_1",
            "external_contact_id": "ext_1",
            "email": "m@example.com",
            "name": "M",
            "created_at": "2026-04-16T00:00:00.000Z",
        }
    }
    for key in (granted["contact_id"], granted["contact_id"].upper(), "ghl_1", "ext_1"):
        assert read(reads.contact, key) == expected


def test_published_summary_example(ledger: Ledger, read: Reader) -> None:
    granted = ledger.grant(
        request_id="grant_req_123",
        external_payment_id="payment_123",
        amount_cents=9900,
        currency="USD",
        paid_at="2026-04-16T00:00:00.000Z",
    )
    ledger.deduct(request_id="booking-123-deduct", amount=1, external_ref="booking_123")

    body = read(reads.summary)
    assert set(body["contact"]) == CONTACT_FIELDS
    assert body["contact"]["ghl_contact_id"] == "ghl_contact_123"
    summary = body["summary"]
    assert summary["credits_available"] == 9
    assert summary["last_paid_at"] == "2026-04-16T00:00:00.000Z"
    assert summary["lifetime_value_cents"] == 9900
    assert summary["payment_events_count"] == 1
    assert summary["entitlements"] == [
        {
            "id": granted["entitlement_id"],
            "product_config_id": "pc_package_1",
            "status": "active",
            "credits_remaining": 9,
            "expires_at": None,
        }
    ]
    assert [e["kind"] for e in summary["recent_ledger"]] == ["deduct", "grant"]
    assert [a["external_ref"] for a in summary["recent_appointments"]] == ["booking_123"]
    assert [p["external_payment_id"] for p in summary["recent_payments"]] == ["payment_123"]
    assert read(reads.credits) == {"credits_available": 9, "entitlements": summary["entitlements"]}


def test_summary_recent_lists_hold_the_five_latest(
    ledger: Ledger, read: Reader, clock: FrozenClock
) -> None:
    for n in range(7):
        ledger.grant(product_config_id="pc_big", external_payment_id=f"pay_{n}", amount_cents=100)
        ledger.deduct(product_config_id="pc_big", external_ref=f"booking_{n}")
        clock.advance(timedelta(minutes=1))

    summary = read(reads.summary)["summary"]
    assert summary["payment_events_count"] == 7
    assert summary["lifetime_value_cents"] == 700
    assert summary["last_paid_at"] == "2026-04-16T00:06:00.000Z"  # created_at: no paid_at sent
    assert [p["external_payment_id"] for p in summary["recent_payments"]] == [
        f"pay_{n}" for n in (6, 5, 4, 3, 2)
    ]
    assert [a["external_ref"] for a in summary["recent_appointments"]] == [
        f"booking_{n}" for n in (6, 5, 4, 3, 2)
    ]
    assert [e["kind"] for e in summary["recent_ledger"]] == ["deduct", "grant"] * 2 + ["deduct"]
    assert len(summary["entitlements"]) == 7


def test_entitlement_full_form(
    ledger: Ledger, read: Reader, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_month", credits=8, type_="membership", expiry_days=30)
    granted = ledger.grant(product_config_id="pc_month", paid_at="2026-04-15T12:00:00Z")
    ledger.deduct(product_config_id="pc_month", amount=3)

    (lot,) = read(reads.entitlements)["entitlements"]
    payment = read(reads.payments)["payments"][0]
    assert lot == {
        "id": granted["entitlement_id"],
        "product_config_id": "pc_month",
        "status": "active",
        "credits_remaining": 5,
        "expires_at": "2026-05-15T12:00:00.000Z",
        "product_config_name": "pc_month",
        "type": "membership",
        "credits_granted": 8,
        "credits_used": 3,
        "effective_at": "2026-04-16T00:00:00.000Z",
        "grant_id": payment["id"],
        "created_at": "2026-04-16T00:00:00.000Z",
    }


def test_ledger_entry_form(ledger: Ledger, read: Reader) -> None:
    granted = ledger.grant()
    ledger.deduct(
        request_id="deduct_1",
        amount=2,
        external_ref="booking_1",
        appointment_time="2026-05-01T10:00:00+02:00",
    )

    entry = read(reads.ledger)["entries"][0]
    correlation_id = entry.pop("correlation_id")
    uuid.UUID(correlation_id)
    assert entry == {
        "id": "2",
        "kind": "deduct",
        "amount": -2,
        "entitlement_id": granted["entitlement_id"],
        "product_config_id": "pc_package_1",
        "entitlement_balance_after": 8,
        "request_id": "deduct_1",
        "external_ref": "booking_1",
        "appointment_time": "2026-05-01T08:00:00.000Z",
        "actor": entry["actor"],
        "created_at": "2026-04-16T00:00:00.000Z",
    }


def test_appointment_form(ledger: Ledger, read: Reader, db: Database, clock: FrozenClock) -> None:
    make_config(db, clock, "pc_yoga", credits=5, calendars=["cal_yoga"])
    ledger.grant(product_config_id="pc_yoga")
    ledger.deduct(
        product_config_id="pc_yoga",
        amount=2,
        external_ref="booking_1",
        appointment_time="2026-05-01T10:00:00.123456Z",
    )
    ledger.restore(product_config_id="pc_yoga", amount=2, external_ref="booking_1")

    (appointment,) = read(reads.appointments_upcoming)["appointments"]
    assert uuid.UUID(appointment.pop("id"))
    assert appointment == {
        "external_ref": "booking_1",
        "calendar_id": "cal_yoga",
        "appointment_time": "2026-05-01T10:00:00.123Z",
        "status": "cancelled",
        "credits_deducted": 2,
        "credits_restored": 2,
    }


def test_payment_form(ledger: Ledger, read: Reader) -> None:
    granted = ledger.grant(
        external_payment_id="pi_1",
        provider="stripe",
        event_type="invoice.paid",
        amount_cents=4900,
        currency="EUR",
        paid_at="2026-04-15T09:30:00Z",
    )

    (payment,) = read(reads.payments)["payments"]
    assert uuid.UUID(payment.pop("id"))
    assert payment == {
        "external_payment_id": "pi_1",
        "provider": "stripe",
        "event_type": "invoice.paid",
        "amount_cents": 4900,
        "currency": "EUR",
        "paid_at": "2026-04-15T09:30:00.000Z",
        "product_config_id": "pc_package_1",
        "entitlement_id": granted["entitlement_id"],
        "credits_granted": 10,
    }


def test_payment_totals_count_missing_amounts_as_zero(ledger: Ledger, read: Reader) -> None:
    ledger.grant(amount_cents=1500)
    ledger.grant()  # no amount_cents, no paid_at

    summary = read(reads.summary)["summary"]
    assert summary["lifetime_value_cents"] == 1500
    assert summary["payment_events_count"] == 2
    assert summary["last_paid_at"] == "2026-04-16T00:00:00.000Z"


def test_credits_count_only_live_lots(
    ledger: Ledger, read: Reader, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_short", credits=3, expiry_days=1)
    make_config(db, clock, "pc_retired", credits=4)
    exhausted = ledger.grant()["entitlement_id"]
    ledger.deduct(amount=10)
    live = ledger.grant()["entitlement_id"]
    short = ledger.grant(product_config_id="pc_short")["entitlement_id"]
    retired = ledger.grant(product_config_id="pc_retired")["entitlement_id"]
    with db.unit_of_work() as session:
        configs.update(session, clock, location_id="loc_1", config_id="pc_retired", active=False)
    clock.advance(timedelta(days=1))

    body = read(reads.credits)
    assert body["credits_available"] == 10  # only `live`: short expired, retired's config is off
    statuses = {lot["id"]: lot["status"] for lot in body["entitlements"]}
    assert statuses == {exhausted: "exhausted", live: "active", short: "expired", retired: "active"}


def test_lot_past_expiry_reads_expired_before_the_sweep(
    ledger: Ledger, read: Reader, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_short", credits=3, expiry_days=10)
    lot_id = ledger.grant(product_config_id="pc_short")["entitlement_id"]
    clock.advance(timedelta(days=10))

    before = read(reads.credits)
    assert before["credits_available"] == 0
    # Nothing is written by a read: the lot still holds its credits until the sweep.
    assert before["entitlements"] == [
        {
            "id": lot_id,
            "product_config_id": "pc_short",
            "status": "expired",
            "credits_remaining": 3,
            "expires_at": "2026-04-26T00:00:00.000Z",
        }
    ]
    assert read(reads.entitlements)["entitlements"][0]["status"] == "expired"

    sweep(db, clock)
    after = read(reads.credits)["entitlements"][0]
    assert (after["status"], after["credits_remaining"]) == ("expired", 0)
    assert [e["kind"] for e in read(reads.ledger)["entries"]] == ["expire", "grant"]


def test_credits_used_is_never_negative() -> None:
    # An adjustment may lift a lot above its grant.
    now = datetime(2026, 4, 16, tzinfo=UTC)
    lot = Entitlement(
        id=uuid.uuid4(),
        credits_granted=5,
        credits_remaining=7,
        status="active",
        effective_at=now,
        expires_at=None,
        created_at=now,
        grant_id=None,
    )
    config = ProductConfig(config_id="pc_x", name="X", type="package")
    form = schemas.entitlement_full(lot, config, now)
    assert (form["credits_used"], form["grant_id"]) == (0, None)


def test_paused_lot_past_expiry_keeps_its_status() -> None:
    now = datetime(2026, 4, 16, tzinfo=UTC)
    lot = Entitlement(status="paused", expires_at=now - timedelta(days=1))
    assert schemas.lot_status(lot, now) == "paused"


def test_another_locations_contact_is_never_visible(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_location(db, clock, "loc_2")
    make_config(db, clock, location_id="loc_2", credits=7)
    ours = ledger.grant(amount_cents=100, external_payment_id="payment_1")
    ledger.deduct(external_ref="booking_1", appointment_time="2026-05-01T10:00:00Z")
    theirs = Ledger(db, clock, "loc_2")
    other = theirs.grant(amount_cents=999, external_payment_id="payment_1")
    theirs.deduct(amount=2, external_ref="booking_1", appointment_time="2026-04-01T10:00:00Z")

    loc_1, loc_2 = Reader(db, clock, "loc_1"), Reader(db, clock, "loc_2")
    assert loc_1(reads.contact)["contact"]["id"] == ours["contact_id"]
    assert loc_2(reads.contact)["contact"]["id"] == other["contact_id"]
    for read_fn in ALL_READS:  # by the other location's UUID: unknown here
        assert loc_1(read_fn, other["contact_id"]) is None
        assert loc_2(read_fn, ours["contact_id"]) is None

    summary = loc_1(reads.summary)["summary"]
    assert summary["credits_available"] == 9
    assert summary["lifetime_value_cents"] == 100
    assert [lot["id"] for lot in summary["entitlements"]] == [ours["entitlement_id"]]
    assert loc_1(reads.appointments_past)["appointments"] == []
    assert len(loc_1(reads.appointments_upcoming)["appointments"]) == 1
    assert len(loc_1(reads.timeline)["items"]) == 4  # grant entry, payment, deduct, booking
    entry_ids = {e["entitlement_id"] for e in loc_1(reads.ledger)["entries"]}
    assert entry_ids == {ours["entitlement_id"]}
    assert loc_2(reads.credits)["credits_available"] == 5
    assert [p["amount_cents"] for p in loc_2(reads.payments)["payments"]] == [999]
