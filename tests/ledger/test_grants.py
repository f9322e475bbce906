"""Grants: one confirmed payment, one new lot (ledger.md §Grants, api-v2.md §4.1)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kotally.db.engine import Database
from kotally.db.models import Contact, Entitlement, Grant, LedgerEntry
from kotally.kit.clock import FrozenClock
from tests.factories import Ledger, lot, make_config, rows, studio, update_config


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    return studio(db, clock)


def test_grant_applied_answers_with_the_new_lot(ledger: Ledger, db: Database) -> None:
    body = ledger.grant(
        request_id="grant_req_123",
        external_payment_id="payment_123",
        amount_cents=9900,
        currency="usd",
        paid_at="2026-04-16T00:00:00.000Z",
    )

    contact = rows(db, Contact)[0]
    assert body == {
        "ok": True,
        "reason_code": "grant_applied",
        "correlation_id": body["correlation_id"],
        "location_id": "loc_1",
        "contact_id": str(contact.id),
        "entitlement_id": body["entitlement_id"],
        "credits_granted": 10,
        "balance_after": 10,
    }
    uuid.UUID(body["correlation_id"])
    [payment] = rows(db, Grant)
    assert (payment.external_payment_id, payment.amount_cents, payment.currency) == (
        "payment_123",
        9900,
        "USD",
    )
    granted = lot(db, body["entitlement_id"])
    assert (granted.grant_id, granted.credits_granted, granted.credits_remaining) == (
        payment.id,
        10,
        10,
    )
    assert granted.status == "active"
    [entry] = rows(db, LedgerEntry)
    assert (entry.kind, entry.amount, entry.balance_after, entry.request_id) == (
        "grant",
        10,
        10,
        "grant_req_123",
    )
    assert entry.correlation_id == body["correlation_id"]


def test_membership_grants_its_monthly_credits(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_member", credits=8, type_="membership")

    body = ledger.grant(product_config_id="pc_member")

    assert (body["credits_granted"], body["balance_after"]) == (8, 8)


def test_balance_after_counts_the_earlier_lots_of_the_config(ledger: Ledger) -> None:
    ledger.grant()
    ledger.deduct(amount=3)
    ledger.grant(product_config_id="pc_other")

    body = ledger.grant()

    assert (body["credits_granted"], body["balance_after"]) == (10, 17)


def test_same_payment_under_another_request_id_grants_nothing_new(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    first = ledger.grant(request_id="grant-1", external_payment_id="payment_1")
    ledger.deduct(amount=3)
    update_config(db, clock, credits=25)  # the original grant's credits are what is reported

    again = ledger.grant(request_id="grant-2", external_payment_id="payment_1")

    assert again["reason_code"] == "grant_already_applied"
    assert again["ok"] is True
    assert again["correlation_id"] != first["correlation_id"]
    assert (again["contact_id"], again["entitlement_id"]) == (
        first["contact_id"],
        first["entitlement_id"],
    )
    assert (again["credits_granted"], again["balance_after"]) == (10, 7)
    assert len(rows(db, Grant)) == 1
    assert len(rows(db, Entitlement)) == 1
    assert len(rows(db, LedgerEntry, LedgerEntry.kind == "grant")) == 1


def test_already_applied_answers_even_for_another_contact(ledger: Ledger, db: Database) -> None:
    first = ledger.grant(external_payment_id="payment_1", ghl_contact_id="ghl_a")

    again = ledger.grant(external_payment_id="payment_1", ghl_contact_id="ghl_b")

    assert again["reason_code"] == "grant_already_applied"
    assert again["contact_id"] == first["contact_id"]
    assert [c.ghl_contact_id for c in rows(db, Contact)] == ["ghl_a"]


def test_already_applied_balance_of_a_deactivated_config_is_zero(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    ledger.grant(external_payment_id="payment_1")
    update_config(db, clock, active=False)

    again = ledger.grant(external_payment_id="payment_1")

    # Lots of an inactive config are not live (ledger.md invariant 3): nothing is usable today.
    assert again["reason_code"] == "grant_already_applied"
    assert (again["credits_granted"], again["balance_after"]) == (10, 0)


def test_expiry_counts_from_paid_at(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    make_config(db, clock, "pc_90", expiry_days=90)

    body = ledger.grant(product_config_id="pc_90", paid_at="2026-04-10T12:30:00.000+02:00")

    expected = datetime(2026, 4, 10, 10, 30, tzinfo=UTC) + timedelta(days=90)
    assert lot(db, body["entitlement_id"]).expires_at == expected


def test_expiry_counts_from_now_without_paid_at(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_90", expiry_days=90)

    body = ledger.grant(product_config_id="pc_90")

    granted = lot(db, body["entitlement_id"])
    assert granted.expires_at == clock.now() + timedelta(days=90)
    assert granted.effective_at == clock.now()


def test_no_expiry_days_never_expires(ledger: Ledger, db: Database) -> None:
    body = ledger.grant(paid_at="2020-01-01T00:00:00Z")

    assert lot(db, body["entitlement_id"]).expires_at is None


def test_grant_creates_the_contact_with_its_profile(ledger: Ledger, db: Database) -> None:
    body = ledger.grant(ghl_contact_id="ghl_new", email="member@example.com", name="Member Example")

    [contact] = rows(db, Contact)
    assert str(contact.id) == body["contact_id"]
    assert (contact.ghl_contact_id, contact.external_contact_id) == ("ghl_new", None)
    assert (contact.email, contact.name) == ("member@example.com", "Member Example")


def test_grant_with_both_ids_stores_both(ledger: Ledger, db: Database) -> None:
    ledger.grant(external_contact_id="ext_1", ghl_contact_id="ghl_1")

    [contact] = rows(db, Contact)
    assert (contact.external_contact_id, contact.ghl_contact_id) == ("ext_1", "ghl_1")


@pytest.mark.parametrize(
    ("first_field", "second_field"),
    [
        ("ghl_contact_id", "external_contact_id"),
        ("external_contact_id", "ghl_contact_id"),
        ("ghl_contact_id", "ghl_contact_id"),
    ],
)
def test_contact_is_found_by_either_id(
    ledger: Ledger, db: Database, first_field: str, second_field: str
) -> None:
    first = ledger.grant(**{first_field: "member_1"})

    second = ledger.grant(**{second_field: "member_1"})

    assert second["contact_id"] == first["contact_id"]
    assert second["balance_after"] == 20
    assert len(rows(db, Contact)) == 1


def test_a_ghl_id_sent_later_is_stored_beside_the_external_id(ledger: Ledger, db: Database) -> None:
    first = ledger.grant(external_contact_id="ext_1")

    second = ledger.grant(external_contact_id="ext_1", ghl_contact_id="ghl_1")

    assert second["contact_id"] == first["contact_id"]
    [contact] = rows(db, Contact)
    assert (contact.external_contact_id, contact.ghl_contact_id) == ("ext_1", "ghl_1")
    assert ledger.deduct(ghl_contact_id="ghl_1")["balance_after"] == 19


def test_with_both_ids_the_external_id_is_the_key(ledger: Ledger, db: Database) -> None:
    holder = ledger.grant(ghl_contact_id="ghl_1")

    body = ledger.grant(external_contact_id="ext_1", ghl_contact_id="ghl_1")

    # ghl_1 already belongs to another contact: a new contact keyed by ext_1 alone.
    assert body["contact_id"] != holder["contact_id"]
    ids = sorted((c.ghl_contact_id or "", c.external_contact_id or "") for c in rows(db, Contact))
    assert ids == [("", "ext_1"), ("ghl_1", "")]
    assert ledger.check(ghl_contact_id="ghl_1")["balance_after"] == 9


def test_a_ghl_id_sent_as_external_contact_id_draws_on_the_same_credits(ledger: Ledger) -> None:
    ledger.grant(ghl_contact_id="member_1")

    body = ledger.deduct(external_contact_id="member_1")

    assert (body["reason_code"], body["balance_after"]) == ("deducted", 9)


def test_profile_hints_fill_only_empty_fields(ledger: Ledger, db: Database) -> None:
    ledger.grant(name="First Name")

    ledger.grant(name="Other Name", email="member@example.com")
    ledger.grant(email="other@example.com")

    [contact] = rows(db, Contact)
    assert (contact.name, contact.email) == ("First Name", "member@example.com")


@pytest.mark.parametrize("deactivate", [False, True])
def test_grant_of_a_missing_config(
    ledger: Ledger, db: Database, clock: FrozenClock, deactivate: bool
) -> None:
    if deactivate:
        update_config(db, clock, active=False)
        config_id = "pc_package_1"
    else:
        config_id = "pc_missing"

    body = ledger.grant(product_config_id=config_id, ghl_contact_id="ghl_new")

    assert (body["ok"], body["reason_code"]) == (False, "CONFIG_NOT_FOUND")
    assert rows(db, Contact) == []
    assert rows(db, Grant) == []


def test_a_config_id_of_another_location_is_not_found(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    from tests.factories import make_location

    make_location(db, clock, "loc_2")
    make_config(db, clock, "pc_elsewhere", location_id="loc_2")

    body = ledger.grant(product_config_id="pc_elsewhere")

    assert body["reason_code"] == "CONFIG_NOT_FOUND"
