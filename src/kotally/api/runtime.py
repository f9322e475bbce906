"""What a running app holds once: settings, database, clock, authenticator, rate limiter."""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from kotally.auth.dependency import Authenticator, Principal
from kotally.auth.ratelimit import RateLimiter
from kotally.config import Settings
from kotally.db.async_pg import AsyncPostgres
from kotally.db.engine import Database
from kotally.db.errors import is_unavailable
from kotally.db.group_commit import GroupCommitWriter
from kotally.errors import (
    KotallyError,
    LocationMismatch,
    MissingScope,
    RateLimited,
    ServiceUnavailable,
)
from kotally.kit.clock import Clock
from kotally.ledger.pg_batches import PgBatches

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    authenticator: Authenticator
    limiter: RateLimiter
    # SQLite with group commit: writes are group-committed and reads run on the event loop
    # (a WAL read never waits for a writer; with Redis the rate limiter would block the loop).
    writer: GroupCommitWriter | None = None
    # PostgreSQL: the libpq connections check, deduct and summary run on (ledger/pg_api.py).
    pg: AsyncPostgres | None = None
    # PostgreSQL: the checks and deducts sent in batches on those connections.
    pg_batches: PgBatches | None = None

    # The API's database threads, per event loop (the tests run apps under many loops).
    _api_threads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
        field(default_factory=weakref.WeakKeyDictionary)
    )

    def api_threads(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        limiter = self._api_threads.get(loop)
        if limiter is None:
            limiter = self._api_threads[loop] = anyio.CapacityLimiter(self.settings.api_db_threads)
        return limiter

    @property
    def reads_inline(self) -> bool:
        return self.writer is not None and self.settings.redis_url is None

    @classmethod
    def build(cls, settings: Settings, db: Database, clock: Clock) -> Runtime:
        group_commit = db.dialect == "sqlite" and settings.sqlite_group_commit
        pg = db.async_postgres()
        return cls(
            settings=settings,
            db=db,
            clock=clock,
            authenticator=Authenticator(db, clock, settings.secret_key),
            limiter=RateLimiter(settings),
            writer=GroupCommitWriter(db) if group_commit else None,
            pg=pg,
            pg_batches=None if pg is None else PgBatches.build(pg, settings.db_batches_in_flight),
        )


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.kotally
    return rt


def correlation_id(request: Request) -> str:
    value: str = request.state.correlation_id
    return value


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking database work off the event loop; database outages become 503."""
    with unavailable_as_503():
        return await run_in_threadpool(func, *args)


async def read(rt: Runtime, func: Callable[..., T], *args: Any) -> T:
    """A read-only unit of database work: on the event loop where that is cheaper (SQLite,
    whose WAL reads never wait), else on the thread pool."""
    if rt.reads_inline:
        with unavailable_as_503():
            return func(*args)
    return await _on_api_threads(rt, func, *args)


async def _on_api_threads(rt: Runtime, func: Callable[..., T], *args: Any) -> T:
    """The API's database work runs on a few threads of its own (KOTALLY_API_DB_THREADS): with
    one per request, up to 40, their fight for the GIL cost more than the work (the benchmark:
    PostgreSQL check 371 req/s on 40 threads, 800 on 4; later, two pairs of runs: 2 threads
    against 4, check 964 / 1,161 against 927 / 918 req/s, deduct 325 / 399 against 243 / 336)."""
    with unavailable_as_503():
        return await anyio.to_thread.run_sync(func, *args, limiter=rt.api_threads())


async def write(rt: Runtime, job: Callable[[Session], T]) -> T:
    """`job(session)` in a write transaction that commits before this returns: group-committed
    on SQLite, its own unit of work on the thread pool otherwise."""
    if rt.writer is not None:
        with unavailable_as_503():
            return await rt.writer.run(job)

    def own() -> T:
        with rt.db.unit_of_work() as session:
            return job(session)

    return await _on_api_threads(rt, own)


@contextmanager
def unavailable_as_503() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if is_unavailable(exc):
            raise ServiceUnavailable() from exc
        raise


def authenticate_in(rt: Runtime, request: Request, scope: str, session: Session) -> Principal:
    """401, then 429, then 403 MISSING_SCOPE (api-v2.md §2 precedence), in the caller's
    transaction: the request's own work runs in the same one, on the same database trip. The
    principal is kept on the request for `record_use_of`, even when 429 or 403 follow."""
    principal = rt.authenticator.authenticate(request.headers.get("authorization"), session)
    request.state.principal = principal
    authenticated(request, principal.client_id)
    admit(rt, request, principal, scope)
    return principal


async def record_use_of(rt: Runtime, request: Request) -> None:
    """After the request's transaction: the use of the client it authenticated, if any."""
    client_id: uuid.UUID | None = getattr(request.state, "authenticated", None)
    if client_id is not None:
        await record_use(rt, client_id)


def authenticated(request: Request, client_id: uuid.UUID) -> None:
    """The request's token was valid: its client is logged and its use recorded."""
    request.state.authenticated = client_id
    request.state.client_id = str(client_id)


def defer_authorization(request: Request, scope: str) -> None:
    """The endpoint authenticates inside its own transaction (`authenticate_in`). Should the
    request fail its parameters' validation before the endpoint runs, `authorize_deferred`
    authenticates it first, so that 401, 429 and 403 still come before 422."""
    request.state.deferred_scope = scope


async def authorize_deferred(request: Request) -> None:
    """For a request that never reached its endpoint: the authentication it deferred."""
    scope: str | None = getattr(request.state, "deferred_scope", None)
    if scope is None or getattr(request.state, "principal", None) is not None:
        return
    rt = runtime(request)
    try:
        await read(rt, _authenticate_alone, rt, request, scope)
    finally:
        await record_use_of(rt, request)


def _authenticate_alone(rt: Runtime, request: Request, scope: str) -> None:
    with rt.db.unit_of_work(write=False) as session:
        authenticate_in(rt, request, scope, session)


async def record_use(rt: Runtime, client_id: uuid.UUID) -> None:
    """The client's last_used_at, written (on the thread pool) at most once a minute."""
    if rt.authenticator.touch_due(client_id):
        await run_in_threadpool(rt.authenticator.touch, client_id)


def admit(rt: Runtime, request: Request, principal: Principal, scope: str) -> None:
    """After authentication: 429, then 403 MISSING_SCOPE."""
    decision = rt.limiter.hit(str(principal.client_id), principal.rate_limit_per_second)
    if decision is not None:
        request.state.rate_headers = decision.headers()
        if decision.limited:
            raise RateLimited()
    require_scope(principal, scope)


def let_through(
    rt: Runtime,
    request: Request,
    principal: Principal,
    scope: str,
    parsed: M | KotallyError,
    *,
    limit: bool = True,
) -> M:
    """After authentication, in the order of api-v2.md §2: 429 (unless the limiter was asked
    already, `limit=False`), 403 MISSING_SCOPE, the body's 415/413/400/422, then
    LOCATION_MISMATCH. The valid request it lets through."""
    request.state.principal = principal
    if limit:
        admit(rt, request, principal, scope)
    else:
        require_scope(principal, scope)
    if isinstance(parsed, KotallyError):
        raise parsed
    if getattr(parsed, "location_id", None) != principal.location.id:
        raise LocationMismatch()
    return parsed


def require_scope(principal: Principal, scope: str) -> None:
    """403 MISSING_SCOPE unless the client holds `scope`."""
    if scope not in principal.scopes:
        raise MissingScope(f"This endpoint needs the {scope!r} scope.")
