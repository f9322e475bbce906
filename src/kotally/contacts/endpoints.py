"""GET /api/v2/contacts/{id}/…: the contact reads (scope `summary`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AfterValidator
from sqlalchemy.orm import Session
from starlette.responses import Response

from kotally.api.envelope import json_response
from kotally.api.openapi import Outcome, error_responses
from kotally.api.runtime import (
    Runtime,
    authenticate_in,
    correlation_id,
    defer_authorization,
    read,
    record_use_of,
    runtime,
)
from kotally.contacts import reads
from kotally.contacts.schemas import ContactQuery
from kotally.errors import LocationMismatch, ValidationFailed
from kotally.kit.clock import Clock
from kotally.kit.fields import ID_CHARS_MAX, has_control_chars, no_control_chars
from kotally.ledger import pg_api, sqlite_api

router = APIRouter(prefix="/api/v2/contacts")


async def _deferred(request: Request) -> None:
    defer_authorization(request, "summary")


# Authentication runs in the read's own transaction (`_answer`); declared as a dependency so
# that it is deferred before FastAPI validates the parameters (app.py answers their 422).
Authorized = Annotated[None, Depends(_deferred)]
# Named `id` as in api-v2.md (`/contacts/{id}`), so a 422 names the field the client knows.
ContactKey = Annotated[
    str,
    Path(
        alias="id",
        min_length=1,
        max_length=ID_CHARS_MAX,
        description="Kotally UUID, ghl or external id",
    ),
    AfterValidator(no_control_chars),  # the rule of every id (kit/fields.py)
]
LocationId = Annotated[str, Query(min_length=1, max_length=ID_CHARS_MAX)]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=1024)]
Reader = Callable[..., dict[str, Any] | None]
DOCS: dict[str, Any] = {
    "responses": {
        200: {"model": Outcome, "description": "The read, or NOT_FOUND for an unknown contact"},
        **error_responses(401, 403, 422, 429, 500, 503),
    },
    "openapi_extra": {"security": [{"bearerAuth": []}]},
}


async def _answer(
    request: Request,
    location_id: str,
    reason_code: str,
    reader: Reader,
    contact_key: str,
    **page: Any,
) -> Response:
    rt = runtime(request)

    def read_contact() -> dict[str, Any] | None:
        with rt.db.unit_of_work(write=False) as session:
            principal = authenticate_in(rt, request, "summary", session)
            if "cursor" in page:  # a 422, so before LOCATION_MISMATCH (api-v2.md §2)
                reads.check_cursor(reader, page["cursor"])
            if location_id != principal.location.id:
                raise LocationMismatch()
            return _call(reader, session, rt, location_id, contact_key, page)

    try:
        found = await read(rt, read_contact)
    except reads.InvalidCursor as exc:
        raise ValidationFailed(errors=[{"field": "cursor", "message": str(exc)}]) from exc
    finally:
        await record_use_of(rt, request)
    return _reply(request, reason_code, found)


def _reply(request: Request, reason_code: str, found: dict[str, Any] | None) -> Response:
    cid = correlation_id(request)
    if found is None:
        request.state.reason_code = "NOT_FOUND"
        body = {
            "ok": False,
            "reason_code": "NOT_FOUND",
            "correlation_id": cid,
            "message": "No contact with that id in this location.",
        }
        return json_response(200, body)
    request.state.reason_code = reason_code
    return json_response(
        200, {"ok": True, "reason_code": reason_code, "correlation_id": cid, **found}
    )


def _call(
    reader: Reader,
    session: Session,
    rt: Runtime,
    location_id: str,
    contact_key: str,
    page: dict[str, Any],
) -> dict[str, Any] | None:
    clock: Clock = rt.clock
    return reader(session, clock, location_id, contact_key, **page)


@router.get("/{id}", summary="A contact", **DOCS)
async def contact_endpoint(
    request: Request, _: Authorized, contact_id: ContactKey, location_id: LocationId
) -> Response:
    return await _answer(request, location_id, "contact_loaded", reads.contact, contact_id)


@router.get("/{id}/summary", summary="A contact and their credit summary", **DOCS)
async def summary_endpoint(
    request: Request, _: Authorized, contact_id: ContactKey, location_id: LocationId
) -> Response:
    """A summary the middleware left to the router (`summary_direct`), once its parameters are
    validated: the same statements."""
    return await _summary(request, ContactQuery(location_id=location_id, contact_key=contact_id))


async def summary_direct(request: Request) -> Response | None:
    """The summary as the middleware calls it (api/middleware.py DirectRoute), for a plainly
    valid request; any other (a parameter missing, repeated, unknown or invalid) is left to the
    router, which validates it as every read and calls `summary_endpoint`."""
    query = _plain_query(request)
    return None if query is None else await _summary(request, query)


async def _summary(request: Request, query: ContactQuery) -> Response:
    """In raw statements: one on PostgreSQL (ledger/pg_api.py); on SQLite the client's row, then
    six in one read transaction (ledger/sqlite_api.py). Their answers equal reads.summary's
    (tests/contacts/test_summary_by_database.py), which the staff embed reads."""
    rt = runtime(request)
    try:
        found = await (pg_api if rt.pg is not None else sqlite_api).summary(rt, request, query)
    finally:
        await record_use_of(rt, request)
    return _reply(request, "summary_loaded", found)


def _plain_query(request: Request) -> ContactQuery | None:
    """The contact key and location_id, when they are the only parameters and both valid."""
    contact_key: str = request.path_params["id"]
    pairs = parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
    if len(pairs) != 1 or pairs[0][0] != "location_id":
        return None
    location_id = pairs[0][1]
    for value in (contact_key, location_id):
        if not 1 <= len(value) <= ID_CHARS_MAX:
            return None
    if has_control_chars(contact_key):
        return None
    return ContactQuery(location_id=location_id, contact_key=contact_key)


@router.get("/{id}/credits", summary="Credits available and entitlements", **DOCS)
async def credits_endpoint(
    request: Request, _: Authorized, contact_id: ContactKey, location_id: LocationId
) -> Response:
    return await _answer(request, location_id, "credits_loaded", reads.credits, contact_id)


def _list_route(path: str, reason_code: str, reader: Reader, summary: str) -> None:
    async def endpoint(
        request: Request,
        _: Authorized,
        contact_id: ContactKey,
        location_id: LocationId,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> Response:
        return await _answer(
            request,
            location_id,
            reason_code,
            reader,
            contact_id,
            limit=limit,
            cursor=cursor,
        )

    endpoint.__name__ = f"{reason_code}_{path.strip('/').replace('/', '_')}"
    router.add_api_route(
        "/{id}" + path,
        endpoint,
        methods=["GET"],
        summary=summary,
        name=endpoint.__name__,
        **DOCS,
    )


_list_route("/entitlements", "entitlements_loaded", reads.entitlements, "Entitlements (lots)")
_list_route(
    "/appointments/upcoming",
    "appointments_loaded",
    reads.appointments_upcoming,
    "Upcoming appointments, soonest first",
)
_list_route(
    "/appointments/past",
    "appointments_loaded",
    reads.appointments_past,
    "Past appointments, latest first",
)
_list_route("/ledger", "ledger_loaded", reads.ledger, "Ledger entries, newest first")
_list_route("/payments", "payments_loaded", reads.payments, "Payments, newest first")
_list_route(
    "/timeline",
    "timeline_loaded",
    reads.timeline,
    "Ledger entries, appointments and payments merged, newest first",
)


# Called by the middleware without the router's layers (api/middleware.py DirectRoute).
DIRECT = {summary_endpoint: summary_direct}
