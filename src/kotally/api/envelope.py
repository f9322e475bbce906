"""The response envelope: ok, reason_code, correlation_id (+ message on errors)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kotally.errors import KotallyError


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    try:
        content = orjson.dumps(body)
    except TypeError:  # an integer past 64 bits (a client's metadata, say): the slow encoder
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, media_type="application/json", headers=headers)


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
