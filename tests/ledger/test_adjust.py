"""Adjust: an operator's signed movement on one lot, with the engine's invariants."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from kotally.db.engine import Database
from kotally.db.models import Entitlement, LedgerEntry
from kotally.kit.clock import FrozenClock
from kotally.ledger.adjust import AdjustRequest
from kotally.ledger.verify import verify
from tests.factories import Ledger, adjust_lot, lot, make_config, make_location, rows, studio


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    return studio(db, clock)


def test_adding_and_removing_credits(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    grant = ledger.grant()
    added = adjust_lot(db, clock, grant, 4)
    assert (added["reason_code"], added["credits_remaining"]) == ("adjusted", 14)
    removed = adjust_lot(db, clock, grant, -14)
    assert removed["credits_remaining"] == 0
    assert lot(db, grant["entitlement_id"]).status == "exhausted"
    entries = rows(db, LedgerEntry, LedgerEntry.kind == "adjust")
    assert [(e.amount, e.balance_after) for e in entries] == [(4, 14), (-14, 0)]
    with db.unit_of_work(write=False) as session:
        assert verify(session) == []


def test_removing_below_zero_is_refused_whole(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    grant = ledger.grant()
    body = adjust_lot(db, clock, grant, -11)
    assert body["ok"] is False
    assert body["reason_code"] == "INSUFFICIENT_CREDITS"
    assert body["credits_remaining"] == 10
    assert lot(db, grant["entitlement_id"]).credits_remaining == 10
    assert rows(db, LedgerEntry, LedgerEntry.kind == "adjust") == []


def test_one_request_id_applies_once(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    grant = ledger.grant()
    first = adjust_lot(db, clock, grant, 2, request_id="adj-1")
    second = adjust_lot(db, clock, grant, 2, request_id="adj-1")
    assert first == second
    assert lot(db, grant["entitlement_id"]).credits_remaining == 12


def test_a_request_id_reused_with_another_amount_conflicts(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    from kotally.errors import IdempotencyKeyReused

    grant = ledger.grant()
    adjust_lot(db, clock, grant, 2, request_id="adj-1")
    with pytest.raises(IdempotencyKeyReused):
        adjust_lot(db, clock, grant, 3, request_id="adj-1")


def test_another_contacts_or_locations_lot_is_refused(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    mine = ledger.grant(ghl_contact_id="ghl_a")
    theirs = ledger.grant(ghl_contact_id="ghl_b")
    body = adjust_lot(db, clock, mine, 1, entitlement_id=theirs["entitlement_id"])
    assert body["reason_code"] == "NO_ENTITLEMENT"
    make_location(db, clock, "loc_2")
    make_config(db, clock, location_id="loc_2")
    other = Ledger(db, clock, "loc_2").grant()
    body = adjust_lot(db, clock, mine, 1, entitlement_id=other["entitlement_id"])
    assert body["reason_code"] == "NO_ENTITLEMENT"
    assert lot(db, other["entitlement_id"]).credits_remaining == 10


def test_an_unknown_contact_is_refused(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    grant = ledger.grant()
    body = adjust_lot(db, clock, grant, 1, contact_id=str(uuid.uuid4()))
    assert body["reason_code"] == "CONTACT_NOT_FOUND"


def test_credits_are_not_added_to_an_expired_lot(db: Database, clock: FrozenClock) -> None:
    make_location(db, clock)
    make_config(db, clock, expiry_days=30)
    grant = Ledger(db, clock).grant()
    clock.advance(timedelta(days=31))
    assert adjust_lot(db, clock, grant, 1)["reason_code"] == "ENTITLEMENT_EXPIRED"
    assert adjust_lot(db, clock, grant, -1)["reason_code"] == "adjusted"  # removal still allowed


@pytest.mark.parametrize(
    ("field", "value"),
    [("amount", 0), ("amount", 10_001), ("amount", "3"), ("reason", ""), ("reason", "x" * 501)],
)
def test_bad_requests_are_refused_before_anything(field: str, value: Any) -> None:
    fields: dict[str, Any] = {
        "location_id": "loc_1",
        "request_id": "r",
        "contact_id": str(uuid.uuid4()),
        "entitlement_id": str(uuid.uuid4()),
        "amount": 1,
        "reason": "ok",
        field: value,
    }
    with pytest.raises(ValidationError):
        AdjustRequest.model_validate(fields)


def test_adjustments_count_in_the_balance(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    grant = ledger.grant()
    adjust_lot(db, clock, grant, -3)
    assert ledger.check(amount=8)["reason_code"] == "INSUFFICIENT_CREDITS"
    assert ledger.check(amount=7)["reason_code"] == "eligible"
    assert sum(e.credits_remaining for e in rows(db, Entitlement)) == 7
