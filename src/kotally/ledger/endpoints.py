"""POST /api/v2/grants and /api/v2/entitlements/*: parse, authorize, call the ledger, answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from kotally.api.body import read_json_object, validate
from kotally.api.envelope import json_response
from kotally.api.openapi import post_docs
from kotally.api.runtime import Runtime, authorize, correlation_id, in_thread, runtime
from kotally.auth.dependency import Principal
from kotally.errors import LocationMismatch
from kotally.idempotency.service import Reply
from kotally.ledger import grants, restore, service
from kotally.ledger.context import LedgerContext
from kotally.ledger.schemas import CheckRequest, DeductRequest, GrantRequest, RestoreRequest

router = APIRouter(prefix="/api/v2")
M = TypeVar("M", bound=BaseModel)
Operation = Callable[[LedgerContext, Any], Reply]


async def _handle(
    request: Request, scope: str, model: type[M], operation: Operation, *, write: bool = True
) -> Response:
    principal = await authorize(request, scope)
    rt = runtime(request)
    data = await read_json_object(request, rt.settings.body_bytes_max)
    parsed = validate(model, data)
    if getattr(parsed, "location_id", None) != principal.location.id:
        raise LocationMismatch()
    reply = await in_thread(
        _execute, rt, principal, operation, parsed, correlation_id(request), write
    )
    request.state.reason_code = reply.body.get("reason_code")
    headers = {"X-Correlation-Id": str(reply.body.get("correlation_id"))}
    if reply.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(reply.status, reply.body, headers)


def _execute(
    rt: Runtime,
    principal: Principal,
    operation: Operation,
    parsed: BaseModel,
    cid: str,
    write: bool,
) -> Reply:
    # One unit of work; it commits before this returns, so no answer precedes the commit.
    with rt.db.unit_of_work(write=write) as session:
        ctx = LedgerContext(
            session, rt.clock, principal.location, cid, f"api:{principal.client_id}"
        )
        return operation(ctx, parsed)


@router.post("/grants", **post_docs(GrantRequest, "grant", "Grant a product config's credits"))
async def grant_endpoint(request: Request) -> Response:
    return await _handle(request, "grant", GrantRequest, grants.grant)


@router.post(
    "/entitlements/check-eligibility",
    **post_docs(CheckRequest, "check", "Would the contact have enough credits? Changes nothing"),
)
async def check_endpoint(request: Request) -> Response:
    return await _handle(request, "check", CheckRequest, service.check, write=False)


@router.post("/entitlements/deduct", **post_docs(DeductRequest, "deduct", "Take credits"))
async def deduct_endpoint(request: Request) -> Response:
    return await _handle(request, "deduct", DeductRequest, service.deduct)


@router.post("/entitlements/restore", **post_docs(RestoreRequest, "restore", "Give credits back"))
async def restore_endpoint(request: Request) -> Response:
    return await _handle(request, "restore", RestoreRequest, restore.restore)
