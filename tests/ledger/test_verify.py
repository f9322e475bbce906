"""`verify` and the invariants the database enforces by itself."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from kotally.db.engine import Database
from kotally.db.models import LedgerEntry
from kotally.kit.clock import FrozenClock, isoformat
from kotally.ledger.expiry import sweep
from kotally.ledger.verify import Violation, verify
from tests.factories import Ledger, lot, make_config, rows, studio, update_config


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    return studio(db, clock)


def _violations(db: Database) -> list[Violation]:
    with db.unit_of_work(write=False) as session:
        return verify(session)


def _set_remaining(db: Database, entitlement_id: str, value: int) -> None:
    """Edit a lot behind the ledger's back."""
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE entitlements SET credits_remaining = :value WHERE id = :id").bindparams(
                bindparam("id", type_=Uuid())
            ),
            {"value": value, "id": uuid.UUID(entitlement_id)},
        )


def test_clean_after_a_long_mixed_sequence(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_short", credits=4, expiry_days=7, calendars=["cal_1"])
    for contact in ("ghl_a", "ghl_b"):
        ledger.grant(ghl_contact_id=contact)
        ledger.grant(ghl_contact_id=contact, product_config_id="pc_short")
        ledger.grant(ghl_contact_id=contact, product_config_id="pc_other")
    for i in range(6):
        by_calendar = {"product_config_id": None, "calendar_id": "cal_1"}
        ledger.deduct(ghl_contact_id="ghl_a", amount=2, external_ref=f"class_{i}", **by_calendar)
        ledger.deduct(ghl_contact_id="ghl_b", amount=3, **by_calendar)
        clock.advance(timedelta(days=1))
    ledger.deduct(ghl_contact_id="ghl_b", amount=99)  # refused: stored, changes nothing
    ledger.deduct(ghl_contact_id="ghl_a", request_id="twice", external_ref="class_x")
    ledger.deduct(ghl_contact_id="ghl_a", request_id="twice", external_ref="class_x")  # replay
    ledger.restore(
        ghl_contact_id="ghl_a",
        product_config_id=None,
        calendar_id="cal_1",
        amount=2,
        external_ref="class_0",
    )
    ledger.restore(ghl_contact_id="ghl_a", amount=1, external_ref="class_x")
    ledger.restore(ghl_contact_id="ghl_b", amount=4)
    ledger.deduct(ghl_contact_id="ghl_b", product_config_id="pc_other", amount=5)
    clock.advance(timedelta(days=2))
    assert sweep(db, clock).lots_expired == 2
    ledger.restore(
        ghl_contact_id="ghl_a",
        product_config_id=None,
        calendar_id="cal_1",
        amount=2,
        external_ref="class_1",
    )  # may be refused: its lot expired
    ledger.grant(ghl_contact_id="ghl_b", product_config_id="pc_short")
    ledger.deduct(
        ghl_contact_id="ghl_b",
        product_config_id="pc_short",
        appointment_time=isoformat(clock.now()),
        external_ref="late_class",
    )

    entries = rows(db, LedgerEntry)
    assert {e.kind for e in entries} == {"grant", "deduct", "restore", "expire"}
    assert len(entries) >= 25
    assert _violations(db) == []


def test_catches_a_lot_edited_behind_the_ledgers_back(ledger: Ledger, db: Database) -> None:
    granted = ledger.grant()["entitlement_id"]
    ledger.deduct(amount=3)
    assert _violations(db) == []

    _set_remaining(db, granted, 2)

    violations = _violations(db)
    assert Violation("credits_remaining = sum of entries", f"lot {granted}", 7, 2) in violations
    assert f"lot {granted}: expected 7, found 2" in "\n".join(map(str, violations))


def test_catches_a_lot_above_its_grant(ledger: Ledger, db: Database) -> None:
    granted = ledger.grant()["entitlement_id"]

    _set_remaining(db, granted, 11)

    rules = {v.rule for v in _violations(db) if v.subject == f"lot {granted}"}
    assert rules == {
        "credits_remaining = sum of entries",
        "0 <= credits_remaining <= granted + adjustments",
    }


def test_catches_an_active_lot_without_credits(ledger: Ledger, db: Database) -> None:
    granted = ledger.grant()["entitlement_id"]
    ledger.deduct(amount=10)
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE entitlements SET status = 'active' WHERE id = :id").bindparams(
                bindparam("id", type_=Uuid())
            ),
            {"id": uuid.UUID(granted)},
        )

    assert _violations(db) == [Violation("an active lot has credits", f"lot {granted}", "> 0", 0)]


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ledger_entries SET amount = 100", "DELETE FROM ledger_entries"],
)
def test_ledger_entries_are_append_only(ledger: Ledger, db: Database, statement: str) -> None:
    ledger.grant()
    ledger.deduct()

    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement))

    assert sorted(e.amount for e in rows(db, LedgerEntry)) == [-1, 10]


def test_the_database_refuses_a_negative_lot(ledger: Ledger, db: Database) -> None:
    granted = ledger.grant()["entitlement_id"]

    with pytest.raises(IntegrityError):
        _set_remaining(db, granted, -1)

    assert lot(db, granted).credits_remaining == 10


def test_lots_of_a_deactivated_config_stay_consistent(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    ledger.grant()
    ledger.deduct(amount=4)
    update_config(db, clock, active=False)

    assert _violations(db) == []
