"""The contact summary's cached plans on PostgreSQL (migration 0015).

PL/pgSQL keeps a statement's plan for the connection's life. Made while `appointments` was empty
after a VACUUM, the summary's plan scanned the whole table on every later call as it grew.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.factories import studio
from tests.plans import sequential_scans, vacuum_analyze

BOOKED_MEANWHILE = 2000
_SUMMARY = text("SELECT kotally_summary('loc_1', 'ghl_ada', NULL, now())")


def test_a_summary_does_not_scan_appointments_booked_after_its_plan(
    db: Database, clock: FrozenClock
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("the SQL function is PostgreSQL's")
    ledger = studio(db, clock)
    ledger.grant(ghl_contact_id="ghl_ada")
    bo = ledger.grant(ghl_contact_id="ghl_bo")["contact_id"]
    vacuum_analyze(db, "appointments")
    with db.engine.connect() as reader:
        for _ in range(8):  # past the five custom plans, onto the cached generic one
            reader.execute(_SUMMARY)
            reader.commit()
        with db.engine.begin() as writer:
            writer.execute(
                text(
                    "INSERT INTO appointments (id, location_id, contact_id, external_ref, "
                    "status, credits_deducted, credits_restored, created_at, updated_at) "
                    "SELECT gen_random_uuid(), 'loc_1', :bo, 'booking_' || n, 'booked', 1, 0, "
                    "now(), now() FROM generate_series(1, :count) AS n"
                ),
                {"bo": bo, "count": BOOKED_MEANWHILE},
            )
        _, before = sequential_scans(reader, "appointments")
        summary = reader.execute(_SUMMARY).scalar_one()
        assert summary["summary"]["recent_appointments"] == []  # Bo's, not Ada's
        _, after = sequential_scans(reader, "appointments")
        assert after - before == 0
        reader.rollback()
