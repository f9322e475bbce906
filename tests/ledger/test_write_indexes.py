"""What a deduct writes besides its row: no index entry it does not need (migration 0013).

An entry without an external_ref is never looked up by one, so the ref index leaves it out; on
PostgreSQL a lot's page keeps room for the deduct's update of its remaining credits.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.factories import studio
from tests.plans import captured, plan

OTHER_INDEXES = (
    "ix_ledger_entries_contact",
    "ix_ledger_entries_contact_time",
    "ix_ledger_entries_lot",
)


def _ref_index_definition(db: Database) -> str:
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_ledger_entries_ref'"
        else:
            query = "SELECT sql FROM sqlite_master WHERE name = 'ix_ledger_entries_ref'"
        return str(conn.execute(text(query)).scalar_one())


def test_the_ref_index_holds_only_entries_with_an_external_ref(db: Database) -> None:
    definition = _ref_index_definition(db)
    assert "external_ref IS NOT NULL" in definition, definition


def test_a_restore_finds_its_entries_on_the_ref_index(db: Database, clock: FrozenClock) -> None:
    ledger = studio(db, clock)
    ledger.grant()
    ledger.deduct()  # no external_ref: not in the index
    assert ledger.deduct(external_ref="booking_1")["reason_code"] == "deducted"
    with captured(db) as statements:
        restored = ledger.restore(external_ref="booking_1")
    assert restored["reason_code"] == "restored", restored
    by_ref = [
        (statement, parameters)
        for statement, parameters in statements
        if "FROM ledger_entries" in statement and "external_ref =" in statement
    ]
    assert by_ref, statements
    for statement, parameters in by_ref:
        # Without the contact's other indexes, which on a few rows without statistics PostgreSQL
        # would rightly take (they give the order too); on a real ledger it takes the ref index.
        explained = "\n".join(plan(db, statement, parameters, without=OTHER_INDEXES))
        assert "ix_ledger_entries_ref" in explained, explained


def test_lots_leave_room_on_their_pages_for_updates_on_postgresql(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("a table's fillfactor is PostgreSQL's")
    with db.engine.connect() as conn:
        options = conn.execute(
            text("SELECT reloptions FROM pg_class WHERE relname = 'entitlements'")
        ).scalar_one()
    assert options == ["fillfactor=70"]
