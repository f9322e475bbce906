"""create_app(): routers, middleware, error handlers, lifespan."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from kotally import __version__
from kotally.admin.endpoints import install as install_admin
from kotally.api import system
from kotally.api.envelope import render
from kotally.api.middleware import (
    DirectRoutes,
    KotallyAPI,
    KotallyMiddleware,
    correlation_id_from,
)
from kotally.api.runtime import Runtime, authorize_deferred
from kotally.config import Settings, get_settings
from kotally.contacts import endpoints as contact_endpoints
from kotally.db.engine import Database
from kotally.embed import endpoints as embed_endpoints
from kotally.embed import page as embed_page
from kotally.errors import (
    InternalError,
    KotallyError,
    MethodNotAllowed,
    RouteNotFound,
    ValidationFailed,
)
from kotally.kit.clock import Clock, SystemClock
from kotally.ledger import endpoints as ledger_endpoints
from kotally.ledger.expiry import sweep
from kotally.observability import configure_logging, get_logger
from kotally.webhooks import endpoints as webhook_endpoints
from kotally.webhooks.ghl import signature as ghl_signature

log = get_logger("kotally.app")


def _render(request: Request, error: KotallyError) -> Response:
    if not isinstance(getattr(request.state, "correlation_id", None), str):
        request.state.correlation_id = correlation_id_from(request.scope)
    return render(request, error)


async def _kotally_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KotallyError)
    return _render(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        response = _render(request, MethodNotAllowed())
        response.headers.update(exc.headers or {})  # Allow: the methods the path does take
        return response
    if exc.status_code == 404:
        return _render(request, RouteNotFound())
    return _render(request, InternalError())


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    try:  # 401, 429 and 403 MISSING_SCOPE come before 422 (api-v2.md §2)
        await authorize_deferred(request)
    except KotallyError as error:
        return _render(request, error)
    errors = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())[1:]) or "query",
            "message": "is required" if err.get("type") == "missing" else str(err.get("msg")),
        }
        for err in exc.errors()
    ]
    return _render(request, ValidationFailed(errors=errors))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, path=request.url.path)
    return _render(request, InternalError())


def _sweeper(rt: Runtime, stop: threading.Event) -> None:
    interval = rt.settings.expire_sweep_interval_seconds
    while not stop.wait(interval):
        try:
            result = sweep(rt.db, rt.clock)
            if result.lots_expired:
                log.info("expiry sweep", lots=result.lots_expired, credits=result.credits_expired)
        except Exception as exc:
            log.warning("expiry sweep failed", error=str(exc))


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, db: Database | None = None
) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production()
    # A GHL key that does not load is a configuration error: refuse to start, not 500 later.
    ghl_signature.keys(settings.ghl_webhook_ed25519_public_key, settings.ghl_webhook_rsa_public_key)
    clock = clock or SystemClock()
    database = db or Database(settings)
    rt = Runtime.build(settings, database, clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if settings.expire_sweep_interval_seconds > 0:
            thread = threading.Thread(target=_sweeper, args=(rt, stop), daemon=True)
            thread.start()
        yield
        stop.set()
        if thread is not None:
            thread.join(timeout=5)
        if db is None:
            database.dispose()

    app = KotallyAPI(
        title="Kotally machine API",
        version=__version__,
        description="Credits and entitlements: grant, check, deduct, restore, read.",
        lifespan=lifespan,
        # A path with a trailing slash is no endpoint: 404 ROUTE_NOT_FOUND (api-v2.md §2), not
        # a bodiless 307 that would have clients resend a deduct elsewhere.
        redirect_slashes=False,
    )
    app.state.kotally = rt
    direct = DirectRoutes()
    app.add_middleware(KotallyMiddleware, direct=direct)
    app.add_exception_handler(KotallyError, _kotally_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
    app.include_router(ledger_endpoints.router)
    app.include_router(contact_endpoints.router)
    app.include_router(system.router)
    app.include_router(webhook_endpoints.router)
    install_admin(app)
    app.include_router(embed_page.router)
    app.include_router(embed_endpoints.router)
    direct.add(ledger_endpoints.router.routes, ledger_endpoints.DIRECT)
    direct.add(contact_endpoints.router.routes, contact_endpoints.DIRECT)
    app.answer_directly(direct)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "ktly_<client uuid>_<secret uuid>",
                }
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def create_app_from_env() -> FastAPI:
    """The factory `kotally serve` hands to uvicorn in every worker process."""
    settings = get_settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    # What the process holds from here on lives as long as it does: out of the collector's
    # sight, a full collection scans only what requests leave behind. Without this, each one
    # walked the ~150,000 objects of the imported libraries and stopped the worker for 75-130 ms,
    # every few thousand requests: the benchmark's p99 (bench/RESULTS.md).
    gc.collect()
    gc.freeze()
    return app
