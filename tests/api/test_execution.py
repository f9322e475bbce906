"""Where the API's database work runs: a few threads of its own, or (SQLite with group commit)
the event loop, for reads and group-committed writes alike."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from fastapi import FastAPI
from psycopg import pq
from sqlalchemy import event

from kotally.app import create_app
from kotally.auth.dependency import Authenticator
from kotally.config import Settings
from kotally.db.async_pg import Connection
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from kotally.ledger import sqlite_api, sqlite_ops
from tests.api.conftest import CHECK, DEDUCT, GRANT, PATHS, SUMMARY, Api, api_on, build_client

CONCURRENT = 12
CREDITS = "/api/v2/contacts/ghl_contact_123/credits?location_id=loc_1"


class _Watch:
    """Wraps a function (the authenticator's lookup of the client unless told another): how
    many calls run at once, and on which threads."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, owner: Any = Authenticator, name: str = "_resolve"
    ) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.threads: set[str] = set()
        original = getattr(owner, name)

        def resolve(*args: Any) -> Any:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
                self.threads.add(threading.current_thread().name)
            try:
                time.sleep(0.02)  # long enough for the others to pile up
                return original(*args)
            finally:
                with self.lock:
                    self.now -= 1

        monkeypatch.setattr(owner, name, resolve)


async def test_api_database_work_runs_on_at_most_its_threads(
    api_settings: Settings,
    clock: FrozenClock,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    anyio_backend: str,
) -> None:
    """Work on the thread pool (a contact read other than the summary, which runs as raw
    statements like check; on SQLite without group commit, every read)."""
    settings = api_settings.model_copy(update={"api_db_threads": 2, "sqlite_group_commit": False})
    async with api_on(settings, clock, token) as api:
        assert (await api.post(PATHS["grant"], GRANT)).json()["reason_code"] == "grant_applied"
        watch = _Watch(monkeypatch)
        answers = await asyncio.gather(*(api.get(CREDITS) for _ in range(CONCURRENT)))
    assert {a.json()["reason_code"] for a in answers} == {"credits_loaded"}
    assert watch.most == 2  # twelve requests at once, two at a time


@pytest.mark.parametrize("group_commit", [True, False])
async def test_the_summary_reads_one_snapshot_wherever_it_runs(
    api_settings: Settings,
    clock: FrozenClock,
    token: str,
    group_commit: bool,
    anyio_backend: str,
) -> None:
    """The direct summary on the event loop's reader (group commit) and on a pooled connection
    on the API threads (no group commit) answers as the routed read does."""
    settings = api_settings.model_copy(update={"sqlite_group_commit": group_commit})
    async with api_on(settings, clock, token) as api:
        assert (await api.post(PATHS["grant"], GRANT)).json()["reason_code"] == "grant_applied"
        deducted = await api.post(PATHS["deduct"], DEDUCT)
        assert deducted.json()["reason_code"] == "deducted"
        direct = (await api.get(SUMMARY)).json()
        routed = (await api.get(SUMMARY + "&routed=1")).json()  # an unknown parameter: routed
    assert direct["reason_code"] == routed["reason_code"] == "summary_loaded"
    del direct["correlation_id"], routed["correlation_id"]
    assert direct == routed
    assert direct["summary"]["credits_available"] == 9


async def test_sqlite_group_commit_reads_and_writes_on_the_loop(
    api_settings: Settings,
    clock: FrozenClock,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    anyio_backend: str,
) -> None:
    """With group commit, the check, the deduct's gate and the deduct's batch all run on the
    event loop: no API thread, no writer thread (db/group_commit.py)."""
    if not api_settings.database_url.startswith("sqlite"):
        pytest.skip("group commit is SQLite's")
    async with api_on(api_settings, clock, token) as api:
        reads = _Watch(monkeypatch, sqlite_api, "_authenticate")
        writes = _Watch(monkeypatch, sqlite_ops, "deduct")
        assert (await api.post(PATHS["grant"], GRANT)).json()["reason_code"] == "grant_applied"
        deducts = [
            api.post(PATHS["deduct"], {**DEDUCT, "request_id": f"req_x{n}"}) for n in range(4)
        ]
        answers = await asyncio.gather(*deducts, api.post(PATHS["check"], CHECK))
    assert [a.json()["reason_code"] for a in answers] == ["deducted"] * 4 + ["eligible"]
    assert reads.threads == writes.threads == {threading.current_thread().name}


async def test_a_check_by_config_on_sqlite_is_two_statements(api: Api, db: Database) -> None:
    """The client's row, then the config, contact and live balance in one statement, in
    autocommit on the event loop's own connection (docs/ledger.md, "The hot path on SQLite")."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL's check is one statement on libpq (the test below)")
    assert (await api.post(PATHS["grant"], GRANT)).json()["reason_code"] == "grant_applied"
    seen: list[str] = []
    reader = db.sqlite_reader()  # the app's loop runs in this thread
    reader.set_trace_callback(seen.append)
    try:
        response = await api.post(PATHS["check"], CHECK)
    finally:
        reader.set_trace_callback(None)
    assert response.json()["reason_code"] == "eligible"
    assert [" ".join(sql.split())[:30] for sql in seen] == [
        "SELECT api_clients.active, api",
        "WITH selected(id) AS ( SELECT ",
    ]


class _AsyncStatements:
    """What the app sends on its async PostgreSQL connections, and in which transaction state;
    and that nothing goes through the synchronous engine meanwhile."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.sync: list[str] = []
        original = Connection.fetch_encoded

        async def fetch_encoded(conn: Connection, sql: bytes, params: tuple[Any, ...]) -> Any:
            status = conn.pgconn.transaction_status
            self.sent.append((sql.decode().split("(")[0], status))
            return await original(conn, sql, params)

        monkeypatch.setattr(Connection, "fetch_encoded", fetch_encoded)
        event.listen(db.engine, "before_cursor_execute", self._grab)
        self._db = db

    def _grab(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.sync.append(statement)

    def close(self) -> None:
        event.remove(self._db.engine, "before_cursor_execute", self._grab)


ONE_TRIP = {**DEDUCT, "request_id": "one-trip"}


@pytest.mark.parametrize("rate_limited", [False, True])
async def test_check_and_deduct_on_postgresql_are_one_statement_each(
    api_settings: Settings,
    clock: FrozenClock,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    rate_limited: bool,
    anyio_backend: str,
) -> None:
    """The check, a deduct, its replay, a refusal and the contact summary: authentication and
    the operation in one statement (a batch function; the summary's own) on the libpq
    connections, in autocommit (docs/ledger.md, "The hot path"); with rate limiting on, the
    limiter is asked between two statements."""
    if not api_settings.database_url.startswith("postgresql"):
        pytest.skip("the SQL functions are PostgreSQL's")
    settings = api_settings.model_copy(
        update={"rate_limit_per_second": 1000 if rate_limited else 0}
    )
    sent = [
        (PATHS["check"], CHECK, "eligible", "kotally_api_check_batch"),
        (PATHS["deduct"], ONE_TRIP, "deducted", "kotally_api_deduct_batch"),
        (PATHS["deduct"], ONE_TRIP, "deducted", "kotally_api_deduct_batch"),
        (
            PATHS["deduct"],
            {**DEDUCT, "request_id": "too-many", "amount": 99},
            "INSUFFICIENT_CREDITS",
            "kotally_api_deduct_batch",
        ),
        (SUMMARY, None, "summary_loaded", "kotally_api_summary"),
        (SUMMARY.replace("ghl_contact_123", "nobody"), None, "NOT_FOUND", "kotally_api_summary"),
    ]
    database = Database(settings)
    try:
        async with build_client(create_app(settings, clock=clock, db=database)) as http:
            api = Api(http, token)
            assert (await api.post(PATHS["grant"], GRANT)).json()["reason_code"] == "grant_applied"
            for path, body, reason, function in sent:
                watch = _AsyncStatements(database, monkeypatch)
                try:
                    response = await (api.get(path) if body is None else api.post(path, body))
                finally:
                    watch.close()
                    monkeypatch.undo()
                assert response.json()["reason_code"] == reason
                calls = 2 if rate_limited else 1
                assert watch.sent == [(f"SELECT {function}", pq.TransactionStatus.IDLE)] * calls
                assert watch.sync == []
    finally:
        database.dispose()


async def test_the_ledger_posts_skip_the_router(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The middleware calls the four ledger POSTs and the contact summary itself
    (api/middleware.py DirectRoute); every other request, and a summary whose parameters are not
    plainly valid, goes through the router."""
    routed: list[str] = []
    router_call = type(app.router).__call__

    async def call(router: Any, scope: Any, receive: Any, send: Any) -> None:
        routed.append(scope["path"])
        await router_call(router, scope, receive, send)

    monkeypatch.setattr(type(app.router), "__call__", call)
    for path, body in (("grant", GRANT), ("check", CHECK), ("deduct", DEDUCT)):
        assert (await api.post(PATHS[path], body)).status_code == 200
    assert (await api.post(PATHS["restore"], {})).status_code == 422
    assert (await api.get("/healthz")).status_code == 200
    assert (await api.get(PATHS["check"])).status_code == 405  # not a POST: the router's 405
    assert (await api.get(SUMMARY)).json()["reason_code"] == "summary_loaded"
    unknown_parameter = (await api.get(SUMMARY + "&x=1")).json()
    assert unknown_parameter["reason_code"] == "summary_loaded"
    summary_path = SUMMARY.split("?", maxsplit=1)[0]
    assert (await api.get(summary_path)).json()["reason_code"] == "VALIDATION_ERROR"
    assert (await api.get(CREDITS)).json()["reason_code"] == "credits_loaded"
    # The two summaries that were not plain (an unknown parameter; no location_id) were routed.
    assert routed == [
        "/healthz",
        PATHS["check"],
        summary_path,
        summary_path,
        CREDITS.split("?", maxsplit=1)[0],
    ]


async def test_the_ledger_posts_skip_fastapis_outer_layers(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The four ledger POSTs go to KotallyMiddleware before FastAPI's own stack (telemetry, body
    limit, server errors: api/middleware.py KotallyAPI), and answer as before: envelope,
    correlation id, security headers. Every other request goes through the whole stack."""
    stacked: list[tuple[str, str]] = []
    fastapi_call = FastAPI.__call__

    async def call(application: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            stacked.append((scope["method"], scope["path"]))
        await fastapi_call(application, scope, receive, send)

    monkeypatch.setattr(FastAPI, "__call__", call)
    for path, body in (("grant", GRANT), ("check", CHECK), ("deduct", DEDUCT)):
        response = await api.post(PATHS[path], body)
        assert response.status_code == 200
        assert response.headers["x-correlation-id"] == response.json()["correlation_id"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
    assert (await api.post(PATHS["restore"], {})).json()["reason_code"] == "VALIDATION_ERROR"
    assert (await api.get("/healthz")).status_code == 200
    assert (await api.get(SUMMARY)).json()["reason_code"] == "summary_loaded"
    assert stacked == [("GET", "/healthz"), ("GET", SUMMARY.split("?", maxsplit=1)[0])]
