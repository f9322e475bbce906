"""Where the API's database work runs: a few threads of its own, or (SQLite with group commit)
the event loop for reads and the writer thread for writes."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from kotally.auth.dependency import Authenticator
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.api.conftest import CHECK, DEDUCT, GRANT, PATHS, Api, api_on

CONCURRENT = 12


class _Watch:
    """Wraps the authenticator's lookup: how many run at once, and on which threads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.threads: set[str] = set()
        original = Authenticator._resolve

        def resolve(auth: Authenticator, *args: Any) -> Any:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
                self.threads.add(threading.current_thread().name)
            try:
                time.sleep(0.02)  # long enough for the others to pile up
                return original(auth, *args)
            finally:
                with self.lock:
                    self.now -= 1

        monkeypatch.setattr(Authenticator, "_resolve", resolve)


async def test_api_database_work_runs_on_at_most_its_threads(
    api_settings: Settings,
    clock: FrozenClock,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    anyio_backend: str,
) -> None:
    settings = api_settings.model_copy(update={"api_db_threads": 2, "sqlite_group_commit": False})
    async with api_on(settings, clock, token) as api:
        assert (await api.post(PATHS["grant"], GRANT)).json()["reason_code"] == "grant_applied"
        watch = _Watch(monkeypatch)
        answers = await asyncio.gather(
            *(api.post(PATHS["check"], CHECK) for _ in range(CONCURRENT))
        )
    assert {a.json()["reason_code"] for a in answers} == {"eligible"}
    assert watch.most == 2  # twelve requests at once, two at a time


async def test_sqlite_group_commit_reads_on_the_loop_writes_on_the_writer(
    api_settings: Settings,
    clock: FrozenClock,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    anyio_backend: str,
) -> None:
    if not api_settings.database_url.startswith("sqlite"):
        pytest.skip("group commit is SQLite's")
    async with api_on(api_settings, clock, token) as api:
        watch = _Watch(monkeypatch)
        assert (await api.post(PATHS["grant"], GRANT)).json()["reason_code"] == "grant_applied"
        deducts = [
            api.post(PATHS["deduct"], {**DEDUCT, "request_id": f"req_x{n}"}) for n in range(4)
        ]
        answers = await asyncio.gather(*deducts, api.post(PATHS["check"], CHECK))
    assert [a.json()["reason_code"] for a in answers] == ["deducted"] * 4 + ["eligible"]
    assert watch.threads == {"kotally-writer", threading.current_thread().name}


async def test_a_check_by_config_is_two_statements_outside_a_transaction(
    api: Api, db: Database
) -> None:
    """Authentication, then the config, contact and live balance in one statement; on
    PostgreSQL without BEGIN or COMMIT (docs/ledger.md, Reads)."""
    assert (await api.post(PATHS["grant"], GRANT)).json()["reason_code"] == "grant_applied"
    seen: list[Any] = []

    def grab(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            dbapi = conn.connection.dbapi_connection
            seen.append(dbapi.info.transaction_status if db.dialect == "postgresql" else None)

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        response = await api.post(PATHS["check"], CHECK)
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    assert response.json()["reason_code"] == "eligible"
    assert len(seen) == 2
    if db.dialect == "postgresql":  # the second statement, too, runs outside a transaction
        assert seen == [psycopg.pq.TransactionStatus.IDLE] * 2


async def test_a_deduct_on_postgresql_is_one_statement_after_authentication(
    api: Api, db: Database
) -> None:
    """The deduct, its replay and its refusals: the SQL function kotally_deduct does the whole
    request's work in one statement (docs/ledger.md, Deduct on PostgreSQL)."""
    if db.dialect != "postgresql":
        pytest.skip("the SQL function is PostgreSQL's")
    assert (await api.post(PATHS["grant"], GRANT)).json()["reason_code"] == "grant_applied"
    seen: list[str] = []

    def grab(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split())[:40])

    sent = [
        ({**DEDUCT, "request_id": "one-trip"}, "deducted"),
        ({**DEDUCT, "request_id": "one-trip"}, "deducted"),  # the replay
        ({**DEDUCT, "request_id": "too-many", "amount": 99}, "INSUFFICIENT_CREDITS"),
    ]
    for body, reason in sent:
        seen.clear()
        event.listen(db.engine, "before_cursor_execute", grab)
        try:
            response = await api.post(PATHS["deduct"], body)
        finally:
            event.remove(db.engine, "before_cursor_execute", grab)
        assert response.json()["reason_code"] == reason
        assert len(seen) == 2, seen  # BEGIN and COMMIT are not statements of the cursor
        assert seen[0].startswith("SELECT api_clients.active")
        assert seen[1].startswith("SELECT kotally_deduct(")
