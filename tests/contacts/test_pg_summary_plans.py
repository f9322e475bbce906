"""The contact summary's cached plans on PostgreSQL (migration 0015).

PL/pgSQL keeps a statement's plan for the connection's life. Made while `appointments` was empty
after a VACUUM, the summary's plan scanned the whole table on every later call as it grew.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.factories import studio

BOOKED_MEANWHILE = 2000
_SUMMARY = text("SELECT kotally_summary('loc_1', 'ghl_ada', NULL, now())")


def _rows_scanned(conn: Connection) -> int:
    # This backend's counts not yet sent to the statistics: its own reads, nobody else's.
    scanned = conn.execute(
        text("SELECT seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'appointments'")
    ).scalar_one()
    return int(scanned)


def test_a_summary_does_not_scan_appointments_booked_after_its_plan(
    db: Database, clock: FrozenClock
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("the SQL function is PostgreSQL's")
    ledger = studio(db, clock)
    ledger.grant(ghl_contact_id="ghl_ada")
    bo = ledger.grant(ghl_contact_id="ghl_bo")["contact_id"]
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE appointments"))
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
        before = _rows_scanned(reader)
        summary = reader.execute(_SUMMARY).scalar_one()
        assert summary["summary"]["recent_appointments"] == []  # Bo's, not Ada's
        assert _rows_scanned(reader) - before == 0
        reader.rollback()
