"""POST /api/v2/grants and /api/v2/entitlements/*: parse, authorize, call the ledger, answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from kotally.api.body import read_json_object, validate
from kotally.api.envelope import json_response
from kotally.api.openapi import post_docs
from kotally.api.runtime import (
    Runtime,
    authenticate_in,
    correlation_id,
    let_through,
    record_use_of,
    runtime,
)
from kotally.api.runtime import write as runtime_write
from kotally.errors import KotallyError
from kotally.idempotency.service import Reply
from kotally.ledger import grants, pg_api, restore, sqlite_api
from kotally.ledger.context import LedgerContext
from kotally.ledger.schemas import CheckRequest, DeductRequest, GrantRequest, RestoreRequest

router = APIRouter(prefix="/api/v2")
M = TypeVar("M", bound=BaseModel)
Operation = Callable[[LedgerContext, Any], Reply]
# A request's work once its body is read: authentication, the checks of api-v2.md §2 in their
# order, then the operation; its Reply comes after its commit.
Work = Callable[[Runtime, Request, BaseModel | KotallyError, str], Awaitable[Reply]]


async def _handle(request: Request, model: type[M], work: Work) -> Response:
    rt = runtime(request)
    # The body is read and validated first, but its errors are raised after authentication, in
    # the order of api-v2.md §2: so authentication, the checks and the operation share one
    # transaction and one trip to the database.
    parsed: BaseModel | KotallyError
    try:
        parsed = validate(model, await read_json_object(request, rt.settings.body_bytes_max))
    except KotallyError as error:
        parsed = error
    try:
        reply = await work(rt, request, parsed, correlation_id(request))
    finally:
        await record_use_of(rt, request)
    request.state.reason_code = reply.body.get("reason_code")
    headers = {"X-Correlation-Id": str(reply.body.get("correlation_id"))}
    if reply.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(reply.status, reply.body, headers)


def _in_session(scope: str, operation: Operation) -> Work:
    """Grant and restore: authentication and the operation in one write transaction."""

    async def work(
        rt: Runtime, request: Request, parsed: BaseModel | KotallyError, cid: str
    ) -> Reply:
        def run(session: Session) -> Reply:
            principal = authenticate_in(rt, request, scope, session)  # 401, 429, 403
            req = let_through(rt, request, principal, scope, parsed, limit=False)
            actor = f"api:{principal.client_id}"
            return operation(LedgerContext(session, rt.clock, principal.location, cid, actor), req)

        return await runtime_write(rt, run)

    return work


def _by_database(name: str) -> Work:
    """Check and deduct: authentication and the operation in raw statements, one on
    PostgreSQL's libpq connections (ledger/pg_api.py), two on SQLite (ledger/sqlite_api.py); both
    reach the statements ledger/service.py runs for every other caller."""

    async def work(
        rt: Runtime, request: Request, parsed: BaseModel | KotallyError, cid: str
    ) -> Reply:
        run: Work = getattr(pg_api if rt.pg is not None else sqlite_api, name)
        return await run(rt, request, parsed, cid)

    return work


_GRANT = _in_session("grant", grants.grant)
_RESTORE = _in_session("restore", restore.restore)
_CHECK = _by_database("check")
_DEDUCT = _by_database("deduct")


@router.post("/grants", **post_docs(GrantRequest, "grant", "Grant a product config's credits"))
async def grant_endpoint(request: Request) -> Response:
    return await _handle(request, GrantRequest, _GRANT)


@router.post(
    "/entitlements/check-eligibility",
    **post_docs(CheckRequest, "check", "Would the contact have enough credits? Changes nothing"),
)
async def check_endpoint(request: Request) -> Response:
    return await _handle(request, CheckRequest, _CHECK)


@router.post("/entitlements/deduct", **post_docs(DeductRequest, "deduct", "Take credits"))
async def deduct_endpoint(request: Request) -> Response:
    return await _handle(request, DeductRequest, _DEDUCT)


@router.post("/entitlements/restore", **post_docs(RestoreRequest, "restore", "Give credits back"))
async def restore_endpoint(request: Request) -> Response:
    return await _handle(request, RestoreRequest, _RESTORE)


# Called by the middleware without the router's layers (api/middleware.py DirectRoute).
DIRECT = {
    endpoint: endpoint
    for endpoint in (grant_endpoint, check_endpoint, deduct_endpoint, restore_endpoint)
}
