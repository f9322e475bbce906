"""Process and database health, and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import Response

from kotally.api.envelope import json_response
from kotally.api.runtime import correlation_id, in_thread, runtime
from kotally.errors import ServiceUnavailable
from kotally.observability import metrics_payload

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    return json_response(
        200, {"ok": True, "reason_code": "alive", "correlation_id": correlation_id(request)}
    )


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    rt = runtime(request)

    def ping() -> None:
        with rt.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await in_thread(ping)
    except Exception as exc:
        raise ServiceUnavailable("The database is not reachable.") from exc
    return json_response(
        200, {"ok": True, "reason_code": "ready", "correlation_id": correlation_id(request)}
    )


@router.get("/metrics")
async def metrics() -> Response:
    payload, content_type = metrics_payload()
    return Response(payload, media_type=content_type)
