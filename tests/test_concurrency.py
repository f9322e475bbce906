"""Concurrent writers on one contact: no credit is spent twice, one request_id has one effect.

Threads share one Database (one pool), each request on its own connection and transaction; the
multi-process variant gives each writer its own process and engine, as server workers have.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.models import Entitlement, Grant, LedgerEntry, Location
from kotally.errors import RequestInProgress
from kotally.idempotency.service import Reply
from kotally.kit.clock import FrozenClock
from kotally.ledger import service
from kotally.ledger.context import LedgerContext
from kotally.ledger.schemas import DeductRequest
from kotally.ledger.verify import verify
from tests.factories import Ledger, make_config, make_location, rows

DEDUCTS = 50
CREDITS = 10
BARRIER_TIMEOUT_SECONDS = 120


def _concurrent_settings(settings: Settings, connections: int) -> Settings:
    # One connection per writer, so all of them really are in flight at once. The lock and busy
    # timeouts are raised so that a slow CI machine queues writers rather than failing them.
    return Settings(
        **{
            **settings.model_dump(),
            "db_pool_size": connections,
            "db_pool_overflow": 0,
            "db_lock_timeout_seconds": 60,
            "db_busy_timeout_seconds": 60,
        }
    )


@pytest.fixture
def shared_db(settings: Settings, clock: FrozenClock) -> Iterator[Database]:
    """loc_1 with a 10-credit package granted to ghl_contact_123, on a pool for every writer."""
    database = Database(_concurrent_settings(settings, DEDUCTS + 5))
    make_location(database, clock)
    make_config(database, clock, credits=CREDITS)
    Ledger(database, clock).grant()
    yield database
    database.dispose()


def _in_threads(
    db: Database, clock: FrozenClock, op: str, requests: list[dict[str, Any]]
) -> list[Reply | RequestInProgress]:
    """Run every request at once, each on its own thread; other exceptions propagate."""
    barrier = threading.Barrier(len(requests))
    ledger = Ledger(db, clock)

    def one(fields: dict[str, Any]) -> Reply | RequestInProgress:
        barrier.wait(timeout=BARRIER_TIMEOUT_SECONDS)
        try:
            return ledger.reply(op, **fields)
        except RequestInProgress as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(one, requests))


def _assert_exactly_the_credits_were_spent(db: Database, bodies: list[dict[str, Any]]) -> None:
    codes = Counter(body["reason_code"] for body in bodies)
    assert codes == {"deducted": CREDITS, "INSUFFICIENT_CREDITS": DEDUCTS - CREDITS}
    # Serialised writers each saw the previous one's result: every balance occurs once.
    deducted = [body for body in bodies if body["reason_code"] == "deducted"]
    assert sorted(body["balance_after"] for body in deducted) == list(range(CREDITS))
    refused = [body for body in bodies if body["reason_code"] == "INSUFFICIENT_CREDITS"]
    assert {body["balance_available"] for body in refused} == {0}

    [lot] = rows(db, Entitlement)
    assert (lot.credits_remaining, lot.status) == (0, "exhausted")
    with db.unit_of_work(write=False) as session:
        total = session.execute(
            select(func.sum(LedgerEntry.amount)).where(LedgerEntry.entitlement_id == lot.id)
        ).scalar_one()
        assert total == lot.credits_remaining
        assert verify(session) == []
    deductions = rows(db, LedgerEntry, LedgerEntry.kind == "deduct")
    assert sorted(e.amount for e in deductions) == [-1] * CREDITS
    assert len({e.balance_after for e in deductions}) == CREDITS


def test_concurrent_deducts_spend_each_credit_once(shared_db: Database, clock: FrozenClock) -> None:
    requests = [{"request_id": f"booking-{i}"} for i in range(DEDUCTS)]

    results = _in_threads(shared_db, clock, "deduct", requests)

    replies = [r for r in results if isinstance(r, Reply) and not r.replayed]
    assert len(replies) == DEDUCTS, results
    _assert_exactly_the_credits_were_spent(shared_db, [r.body for r in replies])
    assert Ledger(shared_db, clock).check()["balance_available"] == 0


def test_concurrent_duplicates_of_one_request_id_have_one_effect(
    shared_db: Database, clock: FrozenClock
) -> None:
    requests = [{"request_id": "booking-1", "amount": 2, "external_ref": "b1"}] * 20

    results = _in_threads(shared_db, clock, "deduct", requests)

    replies = [r for r in results if isinstance(r, Reply)]
    in_progress = [r for r in results if isinstance(r, RequestInProgress)]
    assert len(replies) + len(in_progress) == 20
    # Exactly one ran; every other answer is its stored body replayed, or "still in progress".
    [original] = [r for r in replies if not r.replayed]
    assert (original.body["reason_code"], original.body["balance_after"]) == ("deducted", 8)
    assert all(r.body == original.body for r in replies)
    if shared_db.dialect == "sqlite":
        assert in_progress == []  # writers serialise at BEGIN IMMEDIATE: the first has finished
    assert [e.amount for e in rows(shared_db, LedgerEntry, LedgerEntry.kind == "deduct")] == [-2]
    assert Ledger(shared_db, clock).check()["balance_after"] == 7


def test_concurrent_grants_of_one_payment_grant_once(
    settings: Settings, clock: FrozenClock
) -> None:
    db = Database(_concurrent_settings(settings, 25))
    try:
        make_location(db, clock)
        make_config(db, clock, credits=CREDITS)
        requests = [
            {
                "request_id": f"grant-{i}",
                "external_payment_id": "payment_1",
                "ghl_contact_id": "ghl_new",
                "email": "new@example.com",
            }
            for i in range(20)
        ]

        results = _in_threads(db, clock, "grant", requests)

        bodies = [r.body for r in results if isinstance(r, Reply)]
        assert len(bodies) == 20
        assert Counter(b["reason_code"] for b in bodies) == {
            "grant_applied": 1,
            "grant_already_applied": 19,
        }
        assert len({(b["contact_id"], b["entitlement_id"]) for b in bodies}) == 1
        assert {b["balance_after"] for b in bodies} == {CREDITS}
        assert len(rows(db, Grant)) == len(rows(db, Entitlement)) == 1
    finally:
        db.dispose()


def test_a_duplicate_of_an_uncommitted_request_never_runs_twice(
    shared_db: Database, settings: Settings, clock: FrozenClock
) -> None:
    impatient = Database(
        Settings(
            **{
                **settings.model_dump(),
                "db_lock_timeout_seconds": 0.2,
                "db_busy_timeout_seconds": 0.2,
            }
        )
    )
    request = {
        "location_id": "loc_1",
        "request_id": "booking-1",
        "ghl_contact_id": "ghl_contact_123",
        "product_config_id": "pc_package_1",
    }
    try:
        with shared_db.unit_of_work() as session:
            location = session.get_one(Location, "loc_1")
            ctx = LedgerContext(session, clock, location, str(uuid.uuid4()), "test")
            first = service.deduct(ctx, DeductRequest.model_validate(request))
            # The first is claimed but not committed: the duplicate must not run.
            if shared_db.dialect == "postgresql":
                with pytest.raises(RequestInProgress):
                    Ledger(impatient, clock).reply("deduct", request_id="booking-1")
            else:  # SQLite: the duplicate cannot even begin its write transaction
                with pytest.raises(OperationalError, match="locked"):
                    Ledger(impatient, clock).reply("deduct", request_id="booking-1")

        again = Ledger(impatient, clock).reply("deduct", request_id="booking-1")
    finally:
        impatient.dispose()

    assert again.replayed
    assert again.body == first.body
    assert len(rows(shared_db, LedgerEntry, LedgerEntry.kind == "deduct")) == 1


# --- writers in separate processes ---------------------------------------------------------------

PROCESSES = 10  # x 5 writer threads each: 50 deducts in flight from 10 engines and pools


def _deduct_in_process(
    settings: dict[str, Any], at: str, request_ids: list[str], barrier: Any, results: Any
) -> None:
    """Child process: its own engine, one connection per writer thread, all released at once."""
    db = Database(Settings(**{**settings, "db_pool_size": len(request_ids), "db_pool_overflow": 0}))
    ledger = Ledger(db, FrozenClock(datetime.fromisoformat(at)))

    def one(request_id: str) -> None:
        try:
            barrier.wait(timeout=BARRIER_TIMEOUT_SECONDS)
            results.put(ledger.deduct(request_id=request_id))
        except BaseException as exc:
            barrier.abort()  # release the others rather than let them wait for the timeout
            results.put({"reason_code": "CHILD_FAILED", "error": repr(exc)})

    threads = [threading.Thread(target=one, args=(rid,)) for rid in request_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.dispose()


def test_concurrent_deducts_from_separate_processes_spend_each_credit_once(
    shared_db: Database, clock: FrozenClock
) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(DEDUCTS)
    results = context.Queue()
    child_settings = shared_db.settings.model_dump()
    request_ids = [f"booking-{i}" for i in range(DEDUCTS)]
    processes = [
        context.Process(
            target=_deduct_in_process,
            args=(
                child_settings,
                clock.now().isoformat(),
                request_ids[i::PROCESSES],
                barrier,
                results,
            ),
        )
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        bodies = [results.get(timeout=BARRIER_TIMEOUT_SECONDS + 60) for _ in request_ids]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()

    assert [b for b in bodies if b["reason_code"] == "CHILD_FAILED"] == []
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    _assert_exactly_the_credits_were_spent(shared_db, bodies)
