"""A deduct's booking on PostgreSQL (migration 0014): written through its unique key.

The SQL function used to look the booking up first. PL/pgSQL caches that lookup's plan per
connection, and a plan made while `appointments` was empty after a VACUUM scans the whole table on
every deduct, however large it grows. Both tests call kotally_deduct the way the ORM's callers do
(ledger/pg_deduct.py): the batch of the API runs the same kotally_deduct_claimed.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from kotally.db.engine import Database
from kotally.db.models import Appointment, Location
from kotally.kit.clock import FrozenClock
from kotally.ledger import pg_deduct
from kotally.ledger.schemas import DeductRequest
from tests.factories import studio
from tests.plans import sequential_scans, vacuum_analyze

WAIT_SECONDS = 30


@pytest.fixture
def contacts(db: Database, clock: FrozenClock) -> dict[str, str]:
    """Ada's and Bo's contact ids, each with a lot of pc_package_1."""
    if db.dialect != "postgresql":
        pytest.skip("the SQL function is PostgreSQL's")
    ledger = studio(db, clock)
    return {name: ledger.grant(ghl_contact_id=name)["contact_id"] for name in ("ghl_ada", "ghl_bo")}


def _deduct(session: Session, clock: FrozenClock, contact: str, ref: str) -> dict[str, Any]:
    location = session.get(Location, "loc_1")
    assert location is not None
    request = DeductRequest.model_validate(
        {
            "location_id": "loc_1",
            "request_id": f"deduct-{uuid.uuid4()}",
            "ghl_contact_id": contact,
            "product_config_id": "pc_package_1",
            "external_ref": ref,
        }
    )
    args = pg_deduct.arguments_for(location, request, clock.now(), str(uuid.uuid4()), "test")
    return pg_deduct.call(session, args)


def test_no_scan_of_appointments_after_a_vacuum_of_the_empty_table(
    contacts: dict[str, str], db: Database, clock: FrozenClock
) -> None:
    vacuum_analyze(db, "appointments")
    with Session(db.engine) as session:
        before, _ = sequential_scans(session, "appointments")
        for n in range(8):  # past the five custom plans, onto the cached generic one
            answer = _deduct(session, clock, "ghl_ada", f"booking_{n}")
            assert answer["body"]["reason_code"] == "deducted", answer
        after, _ = sequential_scans(session, "appointments")
        session.commit()
    assert after - before == 0
    with db.unit_of_work(write=False) as session:
        assert session.query(Appointment).count() == 8


def test_another_contacts_booking_made_meanwhile_is_left_as_it_is(
    contacts: dict[str, str], db: Database, clock: FrozenClock
) -> None:
    first = Session(db.engine)
    answer = _deduct(first, clock, "ghl_ada", "booking_1")  # not committed yet
    assert answer["body"]["reason_code"] == "deducted"
    second: dict[str, Any] = {}

    def other_contact() -> None:
        with Session(db.engine) as session:
            second["answer"] = _deduct(session, clock, "ghl_bo", "booking_1")
            session.commit()

    thread = threading.Thread(target=other_contact)
    thread.start()
    deadline = time.monotonic() + WAIT_SECONDS
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
        while not watcher.execute(  # until the second deduct waits on the booking's key
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE '%kotally_deduct%'"
            )
        ).scalar_one():
            assert time.monotonic() < deadline, "the second deduct never waited"
            time.sleep(0.02)
    first.commit()
    first.close()
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive()
    assert second["answer"]["body"]["reason_code"] == "deducted", second
    with db.unit_of_work(write=False) as session:
        (booking,) = session.query(Appointment).all()
        assert (str(booking.contact_id), booking.credits_deducted) == (contacts["ghl_ada"], 1)
