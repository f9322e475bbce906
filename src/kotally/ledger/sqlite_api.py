"""The API's check, deduct and contact summary on SQLite: raw sqlite3 statements,
authentication included.

The check reads on a connection of its own in autocommit (on the event loop with group commit,
whose WAL reads never wait): the client's row, then ledger/sqlite_ops.py `check`. The deduct
reads the client's row the same way and passes the gate of api-v2.md §2 (401, 429, 403, the
body, LOCATION_MISMATCH) before it queues for the group-commit writer, whose batch runs
sqlite_ops `deduct` in a savepoint sent as SQL (db/group_commit.py `run_raw`): the same steps
ledger/service.py takes for every other caller. Without group commit each deduct is its own
write transaction on the API threads.
The summary reads like the check: the client's row, then contacts/sqlite_summary.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy.dialects import sqlite
from starlette.requests import Request

from kotally.api.runtime import Runtime, authenticated, let_through, unavailable_as_503
from kotally.api.runtime import read as runtime_read
from kotally.api.runtime import write as runtime_write
from kotally.auth.dependency import CLIENT_STATEMENT, Principal, bearer_token
from kotally.contacts import sqlite_summary
from kotally.contacts.schemas import ContactQuery
from kotally.errors import KotallyError
from kotally.idempotency.service import Reply
from kotally.ledger import pg_deduct, sqlite_ops
from kotally.ledger.schemas import CheckRequest, DeductRequest

T = TypeVar("T")
# auth/dependency.py's statement of the client and its location, compiled once for SQLite.
_CLIENT_SQL = str(CLIENT_STATEMENT.compile(dialect=sqlite.dialect()))


def _authenticate(rt: Runtime, request: Request, conn: sqlite3.Connection) -> Principal:
    """The client of the request's token, by its id and keyed hash; 401 otherwise."""
    client_id, token = bearer_token(request.headers.get("authorization"))
    row = sqlite_ops.execute(conn, _CLIENT_SQL, (client_id.hex,)).fetchone()
    principal = rt.authenticator.verify(client_id, token, row)
    authenticated(request, client_id)
    return principal


async def check(rt: Runtime, request: Request, parsed: BaseModel | KotallyError, cid: str) -> Reply:
    def work(conn: sqlite3.Connection) -> Reply:
        principal = _authenticate(rt, request, conn)
        req = cast(CheckRequest, let_through(rt, request, principal, "check", parsed))
        body = sqlite_ops.check_request(conn, principal.location, req, rt.clock.now(), cid)
        return Reply(200, body)

    return await _read(rt, work)


async def deduct(
    rt: Runtime, request: Request, parsed: BaseModel | KotallyError, cid: str
) -> Reply:
    def admit(conn: sqlite3.Connection) -> dict[str, Any]:
        principal = _authenticate(rt, request, conn)
        req = cast(DeductRequest, let_through(rt, request, principal, "deduct", parsed))
        actor = f"api:{principal.client_id}"
        return pg_deduct.arguments_for(principal.location, req, rt.clock.now(), cid, actor)

    # Everything that needs no write lock happens before the request queues for it: the
    # writer's batch holds the database's only write lock, so its time is every worker's.
    args = await _read(rt, admit)

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        args["now"] = rt.clock.now()  # the time of the write, taken under the write lock
        return sqlite_ops.deduct(conn, args)

    if rt.writer is not None:
        with unavailable_as_503():
            answer = await rt.writer.run_raw(work)
    else:
        answer = await runtime_write(rt, lambda session: work(sqlite_ops.connection_of(session)))
    return pg_deduct.reply(answer, args)


async def summary(rt: Runtime, request: Request, query: ContactQuery) -> dict[str, Any] | None:
    """The contact's summary (None: no such contact in the location)."""

    def work(conn: sqlite3.Connection) -> dict[str, Any] | None:
        principal = _authenticate(rt, request, conn)
        let_through(rt, request, principal, "summary", query)
        now = rt.clock.now()
        return sqlite_summary.summary(conn, query.location_id, query.contact_key, now)

    return await _read(rt, work)


async def _read(rt: Runtime, work: Callable[[sqlite3.Connection], T]) -> T:
    return await runtime_read(rt, _on_reader, rt, work)


def _on_reader(rt: Runtime, work: Callable[[sqlite3.Connection], T]) -> T:
    """On the event loop, its own connection; on the API threads (which come and go), one of the
    engine's pool."""
    if rt.reads_inline:
        return work(rt.db.sqlite_reader())
    with rt.db.engine.connect() as connection:
        return work(sqlite_ops.driver_of(connection))
