"""Locations and their API clients."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from kotally.admin import schemas
from kotally.admin.endpoints.common import field_of, location_or_404
from kotally.admin.web import SignedIn, Write, base_url, render, see_other
from kotally.api.runtime import runtime
from kotally.audit import tracked
from kotally.auth import service as clients
from kotally.auth.scopes import SCOPES
from kotally.db.models.location import BILLING_STATUSES
from kotally.errors import OperatorError
from kotally.locations import service as locations

router = APIRouter(prefix="/admin/locations", include_in_schema=False)
NOTICES = {
    "created": "Location created.",
    "saved": "Changes saved.",
    "secret": "Stripe signing secret saved; this location's Stripe events are verified with it.",
    "deactivated": "API client deactivated; its token is refused from now on.",
}


@cache
def timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _form_context(**extra: Any) -> dict[str, Any]:
    return {"timezones": timezones(), "billing_statuses": BILLING_STATUSES, **extra}


@router.get("")
def list_page(request: Request, who: SignedIn) -> Response:
    rt = runtime(request)
    with rt.db.unit_of_work(write=False) as session:
        rows = list(locations.list_all(session))
    return render(request, "locations.html", rows=rows)


@router.get("/new")
def new_page(request: Request, who: SignedIn) -> Response:
    if not who.can_write:
        return see_other("/admin/locations")
    form = {"timezone": "UTC", "billing_status": "active"}
    return render(request, "location_form.html", **_form_context(form=form, errors={}, new=True))


@router.post("")
def create(request: Request, m: Write) -> Response:
    rt = runtime(request)
    parsed = schemas.location(m.form, new=True)
    if parsed.ok:
        try:
            with rt.db.unit_of_work() as session:
                tracked.create_location(session, rt.clock, m.who.actor, **parsed.values)
            return see_other(f"/admin/locations/{parsed.values['location_id']}?notice=created")
        except OperatorError as exc:
            parsed.errors[field_of(str(exc))] = str(exc).capitalize() + "."
    return render(
        request,
        "location_form.html",
        422,
        **_form_context(form=m.form, errors=parsed.errors, new=True),
    )


def _location_page(
    request: Request, location_id: str, *, form: Any = None, errors: Any = None, status: int = 200
) -> Response:
    rt = runtime(request)
    with rt.db.unit_of_work(write=False) as session:
        loc = location_or_404(session, location_id)
    if form is None:
        form = {
            "name": loc.name,
            "timezone": loc.timezone,
            "billing_status": loc.billing_status,
            "cancellation_window_hours": (
                "" if loc.cancellation_window_hours is None else str(loc.cancellation_window_hours)
            ),
        }
    base = base_url(request)
    return render(
        request,
        "location.html",
        status,
        **_form_context(
            location=loc,
            form=form,
            errors=errors or {},
            new=False,
            tab="settings",
            notice=NOTICES.get(request.query_params.get("notice", "")),
            webhook_urls=[
                ("GoHighLevel", f"{base}/webhooks/ghl"),
                ("Stripe", f"{base}/webhooks/stripe/{loc.id}"),
            ],
        ),
    )


@router.get("/{location_id}")
def location_page(request: Request, location_id: str, who: SignedIn) -> Response:
    return _location_page(request, location_id)


@router.post("/{location_id}")
def update(request: Request, location_id: str, m: Write) -> Response:
    rt = runtime(request)
    parsed = schemas.location(m.form, new=False)
    if parsed.ok:
        try:
            with rt.db.unit_of_work() as session:
                location_or_404(session, location_id)
                tracked.update_location(
                    session, rt.clock, m.who.actor, location_id, **parsed.values
                )
            return see_other(f"/admin/locations/{location_id}?notice=saved")
        except OperatorError as exc:
            parsed.errors[field_of(str(exc))] = str(exc).capitalize() + "."
    return _location_page(request, location_id, form=m.form, errors=parsed.errors, status=422)


@router.post("/{location_id}/stripe-secret")
def set_stripe_secret(request: Request, location_id: str, m: Write) -> Response:
    rt = runtime(request)
    secret = m.form.get("stripe_webhook_secret", "").strip()
    if not secret:
        error = "Paste the signing secret of this location's Stripe endpoint (whsec_…)."
    else:
        try:
            with rt.db.unit_of_work() as session:
                location_or_404(session, location_id)
                tracked.update_location(
                    session, rt.clock, m.who.actor, location_id, stripe_webhook_secret=secret
                )
            return see_other(f"/admin/locations/{location_id}?notice=secret")
        except OperatorError as exc:
            error = str(exc).capitalize() + "."
    return _location_page(request, location_id, errors={"stripe_webhook_secret": error}, status=422)


def _clients_page(
    request: Request,
    location_id: str,
    *,
    form: Any = None,
    errors: Any = None,
    issued: clients.IssuedClient | None = None,
    issued_verb: str = "",
    status: int = 200,
) -> Response:
    rt = runtime(request)
    with rt.db.unit_of_work(write=False) as session:
        loc = location_or_404(session, location_id)
        rows = list(clients.list_for(session, location_id))
    return render(
        request,
        "clients.html",
        status,
        location=loc,
        rows=rows,
        scopes=SCOPES,
        form=form or {"scopes[]": "[]"},
        errors=errors or {},
        issued=issued,
        issued_verb=issued_verb,
        tab="clients",
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


@router.get("/{location_id}/clients")
def clients_page(request: Request, location_id: str, who: SignedIn) -> Response:
    return _clients_page(request, location_id)


@router.post("/{location_id}/clients")
def create_client(request: Request, location_id: str, m: Write) -> Response:
    rt = runtime(request)
    parsed = schemas.client(m.form, m.all("scopes"))
    if parsed.ok:
        try:
            with rt.db.unit_of_work() as session:
                location_or_404(session, location_id)
                issued = tracked.create_client(
                    session,
                    rt.clock,
                    rt.settings.secret_key,
                    m.who.actor,
                    location_id=location_id,
                    **parsed.values,
                )
            return _clients_page(request, location_id, issued=issued, issued_verb="created")
        except OperatorError as exc:
            parsed.errors[field_of(str(exc))] = str(exc).capitalize() + "."
    return _clients_page(request, location_id, form=m.form, errors=parsed.errors, status=422)


@router.post("/{location_id}/clients/{client_id}/rotate")
def rotate_client(request: Request, location_id: str, client_id: str, m: Write) -> Response:
    rt = runtime(request)
    try:
        with rt.db.unit_of_work() as session:
            location_or_404(session, location_id)
            issued = tracked.rotate_client(
                session, rt.clock, rt.settings.secret_key, m.who.actor, client_id, location_id
            )
    except OperatorError as exc:
        return _clients_page(request, location_id, errors={"_form": str(exc)}, status=422)
    return _clients_page(request, location_id, issued=issued, issued_verb="rotated")


@router.post("/{location_id}/clients/{client_id}/deactivate")
def deactivate_client(request: Request, location_id: str, client_id: str, m: Write) -> Response:
    rt = runtime(request)
    try:
        with rt.db.unit_of_work() as session:
            location_or_404(session, location_id)
            tracked.deactivate_client(session, rt.clock, m.who.actor, client_id, location_id)
    except OperatorError as exc:
        return _clients_page(request, location_id, errors={"_form": str(exc)}, status=422)
    return see_other(f"/admin/locations/{location_id}/clients?notice=deactivated")
