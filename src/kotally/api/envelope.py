"""The response envelope: ok, reason_code, correlation_id (+ message on errors)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kotally.errors import KotallyError
from kotally.kit import jsontext


class JsonResponse(Response):
    """Starlette's Response of encoded JSON, its raw headers built directly: what
    `Response(content, status, headers, media_type="application/json")` would build."""

    media_type = "application/json"

    def __init__(self, content: bytes, status: int, headers: dict[str, str] | None) -> None:
        self.status_code = status
        self.background = None
        self.body = content
        raw = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        names = {name for name, _ in raw}
        if b"content-length" not in names:
            raw.append((b"content-length", b"%d" % len(content)))
        if b"content-type" not in names:
            raw.append((b"content-type", b"application/json"))
        self.raw_headers = raw


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return JsonResponse(jsontext.dumps(body), status, headers)


def error_body(error: KotallyError, correlation_id: str) -> dict[str, Any]:
    return {
        "ok": False,
        "reason_code": error.reason_code,
        "correlation_id": correlation_id,
        **error.body(),
    }


def error_response(error: KotallyError, correlation_id: str) -> Response:
    bearer = error.status == 401 and error.reason_code == "UNAUTHORIZED"
    headers = {"WWW-Authenticate": "Bearer"} if bearer else None
    return json_response(error.status, error_body(error, correlation_id), headers)


def render(request: Request, error: KotallyError) -> Response:
    """The error's response, its reason code kept for the access log and the metrics."""
    request.state.reason_code = error.reason_code
    return error_response(error, request.state.correlation_id)
