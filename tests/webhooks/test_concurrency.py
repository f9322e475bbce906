"""Webhooks under concurrency: duplicates at once, and a storm of one contact's events in random
order, through the inbox with every delivery on its own thread and connection."""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.models import Appointment, LedgerEntry, Location, WebhookEvent
from kotally.kit.clock import FrozenClock
from kotally.webhooks import inbox
from kotally.webhooks.ghl import events
from kotally.webhooks.ghl.handler import PROVIDER
from tests.factories import Ledger, make_config, make_location, rows
from tests.webhooks.conftest import CONTACT, WINDOW_HOURS, appointment

THREADS = 10
BARRIER_TIMEOUT_SECONDS = 120


@pytest.fixture
def shared_db(settings: Settings, clock: FrozenClock) -> Iterator[Database]:
    database = Database(
        settings.model_copy(
            update={
                "db_pool_size": THREADS + 5,
                "db_pool_overflow": 0,
                "db_lock_timeout_seconds": 60,
                "db_busy_timeout_seconds": 60,
            }
        )
    )
    make_location(database, clock, cancellation_window_hours=WINDOW_HOURS)
    make_config(database, clock, calendars=["cal_1"], ghl_products=["prod_pack"])
    yield database
    database.dispose()


def _deliver(db: Database, clock: FrozenClock, payload: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(payload).encode()
    incoming = events.incoming(payload, raw, str(uuid.uuid4()))
    return inbox.receive(db, clock, db.settings, PROVIDER, incoming)


def _at_once(
    db: Database, clock: FrozenClock, payloads: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    barrier = threading.Barrier(len(payloads))

    def one(payload: dict[str, Any]) -> dict[str, Any]:
        barrier.wait(timeout=BARRIER_TIMEOUT_SECONDS)
        return _deliver(db, clock, payload)

    with ThreadPoolExecutor(max_workers=len(payloads)) as pool:
        return list(pool.map(one, payloads))


def test_the_same_event_ten_times_at_once_applies_once(
    shared_db: Database, clock: FrozenClock
) -> None:
    Ledger(shared_db, clock).grant()
    event = appointment(
        start=clock.now() + timedelta(days=3), updated=clock.now(), webhook_id="wh_1"
    )
    answers = _at_once(shared_db, clock, [event] * THREADS)
    codes = Counter(a["reason_code"] for a in answers)
    assert codes == {"event_processed": 1, "event_duplicate": THREADS - 1}
    assert len({a["event_id"] for a in answers}) == 1
    assert {a["outcome"] for a in answers} == {"deducted"}
    assert len(rows(shared_db, WebhookEvent)) == 1
    assert len(rows(shared_db, LedgerEntry, LedgerEntry.kind == "deduct")) == 1
    assert Ledger(shared_db, clock).check()["balance_after"] == 8  # 9 left, minus the check's 1


def test_one_booking_under_ten_event_ids_at_once_deducts_once(
    shared_db: Database, clock: FrozenClock
) -> None:
    Ledger(shared_db, clock).grant()
    start, now = clock.now() + timedelta(days=3), clock.now()
    payloads = [appointment(start=start, updated=now) for _ in range(THREADS)]
    answers = _at_once(shared_db, clock, payloads)
    assert Counter(a["outcome"] for a in answers) == {"deducted": 1, "DUPLICATE_EVENT": THREADS - 1}
    assert len(rows(shared_db, LedgerEntry, LedgerEntry.kind == "deduct")) == 1
    assert len(rows(shared_db, WebhookEvent)) == THREADS


def test_an_order_ten_times_at_once_grants_once(shared_db: Database, clock: FrozenClock) -> None:
    payload = {
        "type": "OrderStatusUpdate",
        "webhookId": "wh_order",
        "locationId": "loc_1",
        "_id": "ord_1",
        "contactId": CONTACT,
        "status": "completed",
        "currency": "USD",
        "amount": 10,
        "items": [{"qty": 2, "product": {"_id": "prod_pack"}, "price": {"amount": 5}}],
    }
    other = {**payload, "webhookId": "wh_order_again", "type": "OrderCreate"}
    answers = _at_once(shared_db, clock, [payload] * 5 + [other] * 5)
    assert {a["status"] for a in answers} == {"processed"}
    assert len(rows(shared_db, LedgerEntry, LedgerEntry.kind == "grant")) == 2
    assert Ledger(shared_db, clock).check()["balance_after"] == 19


def test_a_storm_of_200_events_in_random_order_ends_in_the_expected_state(
    shared_db: Database, clock: FrozenClock
) -> None:
    ledger = Ledger(shared_db, clock)
    for _ in range(5):
        ledger.grant()  # 50 credits: more than the 40 appointments can hold
    rng = random.Random(8)
    start = clock.now() + timedelta(days=10)
    storm: list[dict[str, Any]] = []
    last: dict[str, str] = {}
    for n in range(40):
        appt_id = f"appt_{n}"
        updated = clock.now()
        statuses = ["confirmed"] + [rng.choice(["confirmed", "cancelled"]) for _ in range(3)]
        kinds = ["AppointmentCreate"] + ["AppointmentUpdate"] * 3
        if rng.random() < 0.25:
            statuses.append("cancelled")
            kinds.append("AppointmentDelete")
        else:
            statuses.append(rng.choice(["confirmed", "cancelled"]))
            kinds.append("AppointmentUpdate")
        for kind, status in zip(kinds, statuses, strict=True):
            updated += timedelta(minutes=1)
            storm.append(appointment(kind, appt_id, status, start=start, updated=updated))
        last[appt_id] = statuses[-1]
    assert len(storm) == 200
    resent = rng.sample(storm, 20)  # some deliveries twice
    deliveries = storm + resent
    rng.shuffle(deliveries)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda p: _deliver(shared_db, clock, p), deliveries))

    assert Counter(a["reason_code"] == "event_duplicate" for a in answers)[True] == 20
    assert all(a["status"] != "failed" for a in answers), [
        a for a in answers if a["status"] == "failed"
    ]
    held = sum(1 for status in last.values() if status == "confirmed")
    assert ledger.check()["balance_after"] == 50 - held - 1
    by_ref = {a.external_ref: a for a in rows(shared_db, Appointment)}
    for appt_id, status in last.items():
        row = by_ref.get(appt_id)
        if status == "confirmed":
            assert row is not None
            assert row.status == "booked"
            assert row.credits_deducted - row.credits_restored == 1
        elif row is not None:
            assert row.status == "cancelled"
            assert row.credits_deducted == row.credits_restored
    with shared_db.unit_of_work(write=False) as session:
        from kotally.ledger.verify import verify

        assert verify(session) == []


def test_installs_of_one_new_location_at_once_create_it_once(
    shared_db: Database, clock: FrozenClock
) -> None:
    install = {"type": "INSTALL", "appId": "app_1", "locationId": "ghl_new", "locationName": "New"}
    sends = [{**install, "webhookId": f"wh_install_{n}"} for n in range(THREADS)]
    answers = _at_once(shared_db, clock, sends)
    assert {(a["reason_code"], a["status"]) for a in answers} == {("event_processed", "processed")}
    assert Counter(a["outcome"] for a in answers) == {
        "location_created": 1,
        "location_installed": THREADS - 1,
    }
    assert len(rows(shared_db, Location, Location.id == "ghl_new")) == 1
