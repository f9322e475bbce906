"""POST /api/v2/grants and /api/v2/entitlements/*: parse, authorize, call the ledger, answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from kotally.api.body import read_json_object, validate
from kotally.api.envelope import json_response
from kotally.api.openapi import post_docs
from kotally.api.runtime import Runtime, authenticate_in, correlation_id, record_use_of, runtime
from kotally.api.runtime import read as runtime_read
from kotally.api.runtime import write as runtime_write
from kotally.errors import KotallyError, LocationMismatch
from kotally.idempotency.service import Reply
from kotally.ledger import grants, pg_api, restore, service
from kotally.ledger.context import LedgerContext
from kotally.ledger.schemas import CheckRequest, DeductRequest, GrantRequest, RestoreRequest

router = APIRouter(prefix="/api/v2")
M = TypeVar("M", bound=BaseModel)
Operation = Callable[[LedgerContext, Any], Reply]
OnPostgres = Callable[[Runtime, Request, BaseModel | KotallyError, str], Awaitable[Reply]]


async def _handle(
    request: Request,
    scope: str,
    model: type[M],
    operation: Operation,
    *,
    write: bool = True,
    on_postgres: OnPostgres | None = None,
) -> Response:
    rt = runtime(request)
    # The body is read and validated first, but its errors are raised after authentication, in
    # the order of api-v2.md §2: so authentication, the checks and the operation share one
    # transaction and one trip to the database's thread (the benchmark: a third of a check's cost).
    parsed: BaseModel | KotallyError
    try:
        parsed = validate(model, await read_json_object(request, rt.settings.body_bytes_max))
    except KotallyError as error:
        parsed = error
    cid = correlation_id(request)
    try:
        if on_postgres is not None and rt.pg is not None:
            # One statement on the async driver, authentication included (ledger/pg_api.py).
            reply = await on_postgres(rt, request, parsed, cid)
        elif write:
            done = _Execution(rt, request, scope, operation, parsed, cid)
            reply = await runtime_write(rt, done.run)
        else:
            done = _Execution(rt, request, scope, operation, parsed, cid)
            reply = await runtime_read(rt, done.run_alone)
    finally:
        await record_use_of(rt, request)
    request.state.reason_code = reply.body.get("reason_code")
    headers = {"X-Correlation-Id": str(reply.body.get("correlation_id"))}
    if reply.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(reply.status, reply.body, headers)


@dataclass
class _Execution:
    """One request's work in one transaction; it commits before the reply is sent."""

    rt: Runtime
    request: Request
    scope: str
    operation: Operation
    parsed: BaseModel | KotallyError
    cid: str

    def run_alone(self) -> Reply:
        """A read on its own (the check): its statements need not share one snapshot."""
        with self.rt.db.unit_of_work(write=False, snapshot=False) as session:
            return self.run(session)

    def run(self, session: Session) -> Reply:
        rt, request = self.rt, self.request
        principal = authenticate_in(rt, request, self.scope, session)  # 401, 429, 403
        if isinstance(self.parsed, KotallyError):  # 415, 413, 400, 422
            raise self.parsed
        if getattr(self.parsed, "location_id", None) != principal.location.id:
            raise LocationMismatch()
        ctx = LedgerContext(
            session, rt.clock, principal.location, self.cid, f"api:{principal.client_id}"
        )
        return self.operation(ctx, self.parsed)


@router.post("/grants", **post_docs(GrantRequest, "grant", "Grant a product config's credits"))
async def grant_endpoint(request: Request) -> Response:
    return await _handle(request, "grant", GrantRequest, grants.grant)


@router.post(
    "/entitlements/check-eligibility",
    **post_docs(CheckRequest, "check", "Would the contact have enough credits? Changes nothing"),
)
async def check_endpoint(request: Request) -> Response:
    return await _handle(
        request, "check", CheckRequest, service.check, write=False, on_postgres=pg_api.check
    )


@router.post("/entitlements/deduct", **post_docs(DeductRequest, "deduct", "Take credits"))
async def deduct_endpoint(request: Request) -> Response:
    return await _handle(
        request, "deduct", DeductRequest, service.deduct, on_postgres=pg_api.deduct
    )


@router.post("/entitlements/restore", **post_docs(RestoreRequest, "restore", "Give credits back"))
async def restore_endpoint(request: Request) -> Response:
    return await _handle(request, "restore", RestoreRequest, restore.restore)
