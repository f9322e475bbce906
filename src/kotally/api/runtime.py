"""What a running app holds once: settings, database, clock, authenticator, rate limiter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from kotally.auth.dependency import Authenticator, Principal
from kotally.auth.ratelimit import RateLimiter
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.errors import is_unavailable
from kotally.errors import MissingScope, RateLimited, ServiceUnavailable
from kotally.kit.clock import Clock

T = TypeVar("T")


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    authenticator: Authenticator
    limiter: RateLimiter


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.kotally
    return rt


def correlation_id(request: Request) -> str:
    value: str = request.state.correlation_id
    return value


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking database work off the event loop; database outages become 503."""
    try:
        return await run_in_threadpool(func, *args)
    except DBAPIError as exc:
        if is_unavailable(exc):
            raise ServiceUnavailable() from exc
        raise


async def authorize(request: Request, scope: str) -> Principal:
    """401, then 429, then 403 MISSING_SCOPE (api-v2.md §2 precedence)."""
    rt = runtime(request)
    principal = await in_thread(rt.authenticator.authenticate, request.headers.get("authorization"))
    admit(rt, request, principal, scope)
    return principal


def admit(rt: Runtime, request: Request, principal: Principal, scope: str) -> None:
    """After authentication: 429, then 403 MISSING_SCOPE."""
    request.state.client_id = str(principal.client_id)
    decision = rt.limiter.hit(str(principal.client_id), principal.rate_limit_per_second)
    if decision is not None:
        request.state.rate_headers = decision.headers()
        if decision.limited:
            raise RateLimited()
    if scope not in principal.scopes:
        raise MissingScope(f"This endpoint needs the {scope!r} scope.")
