"""One ASGI middleware for what every response shares: correlation id, security and rate-limit
headers, the access log line and the metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kotally.api.envelope import error_response, render
from kotally.errors import InternalError, KotallyError
from kotally.observability import ACCESS_LOG, LATENCY, REQUESTS, get_logger

CLIENT_CLOSED_REQUEST = 499
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# As raw ASGI headers: names in lower case, as Starlette's MutableHeaders would set them.
_SECURITY_RAW = [
    (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
]
_FRAME_OPTIONS = b"x-frame-options"
_CORRELATION_HEADER = b"x-correlation-id"
log = get_logger("kotally.access")
_ACCESS = logging.getLogger("kotally.access")


def correlation_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-correlation-id":
            candidate: str = value.decode("latin-1")
            if _CORRELATION_ID.match(candidate):
                return candidate
            break
    return str(uuid.uuid4())


# An endpoint the middleware calls itself: it takes the request alone and answers a Response, or
# None to leave the request to the router (a GET whose parameters are not plainly valid, say).
DirectEndpoint = Callable[[Request], Awaitable[Response | None]]


@dataclass(frozen=True)
class DirectRoute:
    """A route the middleware calls itself, without the framework's routing and dependency
    layers: the hot POSTs, and the contact summary's GET."""

    route: APIRoute
    endpoint: DirectEndpoint


@dataclass
class DirectRoutes:
    """The POSTs by path; the GETs (paths with parameters) by their route's pattern."""

    posts: dict[str, DirectRoute] = field(default_factory=dict)
    gets: list[DirectRoute] = field(default_factory=list)

    def add(self, routes: Iterable[BaseRoute], endpoints: Mapping[Any, DirectEndpoint]) -> None:
        """The routes whose endpoint is a key of `endpoints`, called through its value."""
        for route in routes:
            if not isinstance(route, APIRoute) or route.endpoint not in endpoints:
                continue
            direct = DirectRoute(route, endpoints[route.endpoint])
            if route.methods == {"POST"}:
                self.posts[route.path] = direct
            elif route.methods == {"GET"}:
                self.gets.append(direct)

    def find(self, scope: Scope) -> DirectRoute | None:
        method = scope["method"]
        if method == "POST":
            return self.posts.get(scope["path"])
        if method == "GET":
            for direct in self.gets:
                match = direct.route.path_regex.match(scope["path"])
                if match is not None:
                    scope["path_params"] = match.groupdict()
                    return direct
        return None


class KotallyMiddleware:
    def __init__(self, app: ASGIApp, direct: DirectRoutes | None = None) -> None:
        self.app = app
        self.direct = direct if direct is not None else DirectRoutes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        correlation_id = correlation_id_from(scope)
        state["correlation_id"] = correlation_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        status_holder = {"status": 500, "started": False}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                raw = message.get("headers", ())
                message["headers"] = _with_headers(raw, state, correlation_id)
            await send(message)

        try:
            direct = self.direct.find(scope)
            if direct is None or not await _call_direct(direct, scope, receive, send_with_headers):
                await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            # The client hung up before its body arrived: nothing was done and no one is left to
            # answer. Recorded as nginx's 499, not as a 500 of ours.
            status_holder["status"] = CLIENT_CLOSED_REQUEST
            state["reason_code"] = "CLIENT_DISCONNECTED"
        except Exception as exc:
            # Starlette runs the handler of a bare Exception outside every middleware, so its 500
            # would lack the correlation id and security headers: answer it here instead.
            if status_holder["started"]:
                raise
            log.error("unhandled error", exc_info=exc, path=scope.get("path"))
            state["reason_code"] = InternalError.reason_code
            cid = state.get("correlation_id", correlation_id)
            await error_response(InternalError(), cid)(scope, receive, send_with_headers)
        finally:
            self._record(scope, state, status_holder["status"], time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        reason = state.get("reason_code") or ("ok" if status < 400 else str(status))
        method = scope.get("method", "")
        counter, latency = _metrics(endpoint, method, status, reason)
        counter.inc()
        latency.observe(seconds)
        if not _ACCESS.isEnabledFor(logging.INFO):  # as structlog's filter_by_level, sooner
            return
        fields = {
            "method": method,
            "path": scope.get("path"),
            "endpoint": endpoint,
            "status": status,
            "reason_code": reason,
            "duration_ms": round(seconds * 1000, 2),
            "client_id": state.get("client_id"),
        }
        if not ACCESS_LOG.write(fields):
            log.info("request", **fields)


def _with_headers(
    raw: Iterable[tuple[bytes, bytes]], state: dict[str, Any], correlation_id: str
) -> list[tuple[bytes, bytes]]:
    """The response's headers and what every response shares: the correlation id and security
    headers unless the response set its own, the rate-limit headers over any it set."""
    headers = list(raw)
    present = {name for name, _ in headers}
    if _CORRELATION_HEADER not in present:
        cid = state.get("correlation_id", correlation_id)
        headers.append((_CORRELATION_HEADER, cid.encode("latin-1")))
    for name, value in _SECURITY_RAW:
        # Only the staff embed's page opts out of DENY; it sends its own CSP frame-ancestors
        # instead (embed/page.py).
        if name not in present and not (name == _FRAME_OPTIONS and state.get("frameable")):
            headers.append((name, value))
    for name, value in (state.get("rate_headers") or {}).items():
        key = name.lower().encode("latin-1")
        headers = [(k, v) for k, v in headers if k != key]
        headers.append((key, value.encode("latin-1")))
    return headers


_Children = tuple[Any, Any]
_children: dict[tuple[str, str, int, str], _Children] = {}


def _metrics(endpoint: str, method: str, status: int, reason: str) -> _Children:
    """The request counter's and latency histogram's children for these labels, kept (as
    prometheus_client keeps them) so that a request does not validate its labels again."""
    key = (endpoint, method, status, reason)
    children = _children.get(key)
    if children is None:
        children = _children[key] = (
            REQUESTS.labels(endpoint, method, str(status), reason),
            LATENCY.labels(endpoint, method, reason),
        )
    return children


class KotallyAPI(FastAPI):
    """FastAPI, but the direct POSTs (`DirectRoutes.posts`) are handed to KotallyMiddleware
    before FastAPI's own outer layers (telemetry, body limit, server errors), which would only
    pass them through: KotallyMiddleware answers their errors, 500 included, itself. Every
    other request goes through the whole stack, KotallyMiddleware within it."""

    _front: KotallyMiddleware | None = None

    def answer_directly(self, direct: DirectRoutes) -> None:
        self._front = KotallyMiddleware(super().__call__, direct)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self._front
        if (
            front is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in front.direct.posts
        ):
            if self.root_path:
                scope["root_path"] = self.root_path
            scope["app"] = self
            await front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _call_direct(direct: DirectRoute, scope: Scope, receive: Receive, send: Send) -> bool:
    """The endpoint, as the router would call it: a KotallyError becomes its enveloped answer
    (app.py's handler); anything else goes up to the 500 above. False when the endpoint left the
    request to the router."""
    scope["route"] = direct.route
    request = Request(scope, receive)
    try:
        response = await direct.endpoint(request)
    except KotallyError as error:
        response = render(request, error)
    if response is None:
        del scope["route"]
        scope.pop("path_params", None)
        return False
    await response(scope, receive, send)
    return True
