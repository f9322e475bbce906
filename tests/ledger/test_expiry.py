"""The expiry sweep (ledger.md invariant 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kotally.db.engine import Database
from kotally.db.models import LedgerEntry
from kotally.kit.clock import FrozenClock
from kotally.ledger.expiry import SweepResult, sweep
from tests.factories import Ledger, lot, make_config, make_location, rows


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    make_location(db, clock)
    make_config(db, clock, expiry_days=10)
    return Ledger(db, clock)


def test_sweep_expires_what_is_left(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    granted = ledger.grant()["entitlement_id"]
    ledger.deduct(amount=3)
    clock.advance(timedelta(days=10))

    result = sweep(db, clock)

    assert result == SweepResult(lots_expired=1, credits_expired=7)
    expired = lot(db, granted)
    assert (expired.status, expired.credits_remaining) == ("expired", 0)
    [entry] = rows(db, LedgerEntry, LedgerEntry.kind == "expire")
    assert (str(entry.entitlement_id), entry.amount, entry.balance_after) == (granted, -7, 0)
    assert entry.actor == "system:expiry"
    assert entry.created_at == clock.now()


def test_a_lot_past_expiry_is_not_live_before_the_sweep(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    granted = ledger.grant()["entitlement_id"]
    clock.advance(timedelta(days=10))

    assert ledger.check()["reason_code"] == "NO_ENTITLEMENT"
    assert ledger.deduct()["reason_code"] == "NO_ENTITLEMENT"
    assert lot(db, granted).status == "active"  # not swept yet
    assert rows(db, LedgerEntry, LedgerEntry.kind == "expire") == []


def test_a_lot_is_live_until_its_expiry_instant(ledger: Ledger, clock: FrozenClock) -> None:
    ledger.grant()
    clock.advance(timedelta(days=10) - timedelta(microseconds=1))

    assert sweep(ledger.db, clock) == SweepResult(0, 0)
    assert ledger.check()["balance_after"] == 9


def test_an_exhausted_lot_expires_without_a_zero_entry(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    granted = ledger.grant()["entitlement_id"]
    ledger.deduct(amount=10)
    clock.advance(timedelta(days=11))

    result = sweep(db, clock)

    assert result == SweepResult(lots_expired=1, credits_expired=0)
    assert lot(db, granted).status == "expired"
    assert rows(db, LedgerEntry, LedgerEntry.kind == "expire") == []


def test_sweep_twice_expires_once(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    ledger.grant()
    clock.advance(timedelta(days=10))
    sweep(db, clock)

    assert sweep(db, clock) == SweepResult(0, 0)
    assert len(rows(db, LedgerEntry, LedgerEntry.kind == "expire")) == 1


def test_sweep_covers_every_contact_and_location_and_spares_live_lots(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_location(db, clock, "loc_2")
    make_config(db, clock, location_id="loc_2", credits=4, expiry_days=10)
    make_config(db, clock, "pc_long", expiry_days=30)
    elsewhere = Ledger(db, clock, "loc_2")
    due = [
        ledger.grant(ghl_contact_id="ghl_a")["entitlement_id"],
        ledger.grant(ghl_contact_id="ghl_b")["entitlement_id"],
        elsewhere.grant(ghl_contact_id="ghl_a")["entitlement_id"],
    ]
    spared = ledger.grant(ghl_contact_id="ghl_a", product_config_id="pc_long")["entitlement_id"]
    clock.advance(timedelta(days=10))

    assert sweep(db, clock) == SweepResult(lots_expired=3, credits_expired=24)
    assert [lot(db, i).status for i in due] == ["expired"] * 3
    assert (lot(db, spared).status, lot(db, spared).credits_remaining) == ("active", 10)
