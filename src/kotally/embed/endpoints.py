"""The staff embed's JSON: POST /embed/session and the read-only GET /embed/api/… reads.

Every read runs with the session's one location; nothing here writes but the session row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AfterValidator
from starlette.responses import Response

from kotally.api.body import read_json_object, validate
from kotally.api.envelope import json_response
from kotally.api.runtime import Runtime, correlation_id, in_thread, runtime
from kotally.contacts import reads
from kotally.embed import service
from kotally.embed.schemas import SESSION_BODY_BYTES_MAX, SessionRequest
from kotally.embed.service import ContactNotFound, EmbedPrincipal
from kotally.errors import RateLimited, ValidationFailed
from kotally.kit.clock import isoformat
from kotally.kit.fields import ID_CHARS_MAX, no_control_chars

router = APIRouter(prefix="/embed", include_in_schema=False)

ContactKey = Annotated[
    str,
    Path(alias="id", min_length=1, max_length=ID_CHARS_MAX),
    AfterValidator(no_control_chars),
]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=1024)]
Body = dict[str, Any]


def _clean(value: str | None) -> str | None:
    return None if value is None else no_control_chars(value).strip() or None


SearchText = Annotated[str | None, Query(max_length=ID_CHARS_MAX), AfterValidator(_clean)]


def _limit(request: Request, rt: Runtime, key: str) -> None:
    decision = rt.limiter.hit(key, None)
    if decision is not None:
        request.state.rate_headers = decision.headers()
        if decision.limited:
            raise RateLimited()


def _ok(request: Request, reason_code: str, body: Body) -> Response:
    request.state.reason_code = reason_code
    cid = correlation_id(request)
    return json_response(
        200, {"ok": True, "reason_code": reason_code, "correlation_id": cid, **body}
    )


@router.post("/session", summary="Exchange GHL's encrypted user context for an embed token")
async def create_session(request: Request) -> Response:
    rt = runtime(request)
    client = request.client.host if request.client else "unknown"
    _limit(request, rt, f"embed-session:{client}")  # decrypting costs a little CPU
    limit = min(rt.settings.body_bytes_max, SESSION_BODY_BYTES_MAX)
    body = validate(SessionRequest, await read_json_object(request, limit))
    secret = rt.settings.ghl_app_shared_secret
    shared = secret.get_secret_value() if secret is not None else None

    def create() -> service.CreatedSession:
        with rt.db.unit_of_work() as session:
            return service.create_session(
                session, rt.clock, shared, rt.settings.secret_key, body.payload
            )

    created = await in_thread(create)
    return _ok(
        request,
        "embed_session_created",
        {
            "token": created.token,
            "location_id": created.location_id,
            "expires_at": isoformat(created.expires_at),
        },
    )


async def _principal(request: Request) -> EmbedPrincipal:
    rt = runtime(request)
    header = request.headers.get("authorization")

    def authenticate() -> EmbedPrincipal:
        with rt.db.unit_of_work(write=False) as session:
            return service.authenticate(session, rt.clock, rt.settings.secret_key, header)

    principal = await in_thread(authenticate)
    _limit(request, rt, f"embed:{principal.session_id}")
    return principal


Signed = Annotated[EmbedPrincipal, Depends(_principal)]


async def _read(request: Request, reader: Callable[..., Body | None], *args: Any) -> Body:
    rt = runtime(request)

    def read() -> Body | None:
        with rt.db.unit_of_work(write=False) as session:
            return reader(session, rt.clock, *args)

    try:
        found = await in_thread(read)
    except reads.InvalidCursor as exc:
        raise ValidationFailed(errors=[{"field": "cursor", "message": str(exc)}]) from exc
    if found is None:
        raise ContactNotFound()
    return found


@router.get("/api/location", summary="The session's location: name and time zone")
async def session_location(request: Request, principal: Signed) -> Response:
    rt = runtime(request)

    def read() -> Body:
        with rt.db.unit_of_work(write=False) as session:
            return service.location(session, principal.location_id)

    return _ok(request, "location_loaded", await in_thread(read))


@router.get("/api/contacts", summary="Search the location's contacts")
async def search_contacts(
    request: Request,
    principal: Signed,
    q: SearchText = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    found = await _read(request, reads.search, principal.location_id, q, limit, cursor)
    return _ok(request, "contacts_found", found)


@router.get("/api/contacts/{id}/summary", summary="A contact and their credit summary")
async def contact_summary(request: Request, principal: Signed, contact_id: ContactKey) -> Response:
    found = await _read(request, reads.summary, principal.location_id, contact_id)
    return _ok(request, "summary_loaded", found)


@router.get("/api/contacts/{id}/balances", summary="Usable credits per product config")
async def contact_balances(request: Request, principal: Signed, contact_id: ContactKey) -> Response:
    found = await _read(request, service.balances, principal.location_id, contact_id)
    return _ok(request, "balances_loaded", found)


@router.get("/api/contacts/{id}/appointments/upcoming", summary="Upcoming appointments")
async def upcoming_appointments(
    request: Request,
    principal: Signed,
    contact_id: ContactKey,
    limit: Limit = 5,
    cursor: Cursor = None,
) -> Response:
    found = await _read(
        request, reads.appointments_upcoming, principal.location_id, contact_id, limit, cursor
    )
    return _ok(request, "appointments_loaded", found)
