"""Contacts: search, a contact's page, and the hand-made adjustments and grants."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from kotally.admin import actions, schemas
from kotally.admin.endpoints.common import location_or_404
from kotally.admin.web import Mutation, NotFound, SignedIn, Write, render, see_other
from kotally.api.runtime import correlation_id, runtime
from kotally.configs import service as configs
from kotally.contacts import read_repository as contact_repo
from kotally.contacts import reads
from kotally.contacts.repository import find_for_read
from kotally.db.models import Contact
from kotally.kit.pagination import InvalidCursor
from kotally.locations import service as locations

router = APIRouter(prefix="/admin", include_in_schema=False)
PAGE_SIZE = 25
LOTS_SHOWN = 100
TABS = ("timeline", "ledger", "appointments", "payments")
QUERY_CHARS_MAX = 255
NOTICES = {
    "adjusted": "Adjustment applied: it is in the ledger below.",
    "granted": "Grant applied: a new lot is in the list below.",
}


@router.get("/contacts")
def search_page(
    request: Request,
    who: SignedIn,
    location: str | None = None,
    q: str = "",
    cursor: str | None = None,
) -> Response:
    rt = runtime(request)
    q = q.strip()[:QUERY_CHARS_MAX]
    with rt.db.unit_of_work(write=False) as session:
        all_locations = list(locations.list_all(session))
        chosen = next((loc for loc in all_locations if loc.id == location), None)
        chosen = chosen or (all_locations[0] if all_locations else None)
        page: dict[str, Any] = {"contacts": []}
        error = None
        if chosen is not None:
            try:
                page = reads.search(session, rt.clock, chosen.id, q or None, PAGE_SIZE, cursor)
            except InvalidCursor:
                error = "That page link is out of date; the search starts again from the top."
                page = reads.search(session, rt.clock, chosen.id, q or None, PAGE_SIZE, None)
    return render(
        request,
        "contacts.html",
        locations=all_locations,
        chosen=chosen,
        q=q,
        rows=page["contacts"],
        next_cursor=page.get("next_cursor"),
        first_page=cursor is None,
        error=error,
    )


def _tab_page(
    session: Any, rt: Any, location_id: str, contact: Contact, tab: str, cursor: str | None
) -> dict[str, Any]:
    key = str(contact.id)
    if tab == "ledger":
        before = int(cursor) if cursor and cursor.isdigit() else None
        rows = contact_repo.entries(session, location_id, contact.id, before, PAGE_SIZE + 1)
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        return {"items": rows, "next_cursor": str(rows[-1].entry.id) if more else None}
    if tab == "appointments":
        upcoming = reads.appointments_upcoming(session, rt.clock, location_id, key, 20) or {}
        past = reads.appointments_past(session, rt.clock, location_id, key, PAGE_SIZE, cursor)
        return {
            "upcoming": upcoming.get("appointments", []),
            "items": (past or {}).get("appointments", []),
            "next_cursor": (past or {}).get("next_cursor"),
        }
    read = reads.payments if tab == "payments" else reads.timeline
    body = read(session, rt.clock, location_id, key, PAGE_SIZE, cursor) or {}
    return {
        "items": body.get("payments", body.get("items", [])),
        "next_cursor": body.get("next_cursor"),
    }


def _contact_page(
    request: Request,
    location_id: str,
    contact_id: str,
    *,
    errors: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    rt = runtime(request)
    tab = request.query_params.get("tab", "timeline")
    tab = tab if tab in TABS else "timeline"
    cursor = request.query_params.get("cursor") or None
    now = rt.clock.now()
    with rt.db.unit_of_work(write=False) as session:
        loc = location_or_404(session, location_id)
        contact = find_for_read(session, location_id, contact_id)
        if contact is None:
            raise NotFound(f"There is no contact {contact_id!r} in {location_id!r}.")
        lots = reads.entitlements(session, rt.clock, location_id, str(contact.id), LOTS_SHOWN) or {}
        lots_list = lots.get("entitlements", [])
        usable = contact_repo.usable_lots(session, location_id, contact.id, now)
        try:
            history = _tab_page(session, rt, location_id, contact, tab, cursor)
        except InvalidCursor:
            history = _tab_page(session, rt, location_id, contact, tab, None)
        active_configs = [c for c in configs.list_all(session, location_id) if c.active]
    balances: dict[str, dict[str, Any]] = {}
    for lot in lots_list:
        balances.setdefault(
            lot["product_config_id"], {"name": lot["product_config_name"], "credits": 0}
        )
    for row in usable:
        entry = balances.setdefault(row.config.config_id, {"name": row.config.name, "credits": 0})
        entry["credits"] += row.lot.credits_remaining
    return render(
        request,
        "contact.html",
        status,
        location=loc,
        contact=contact,
        balances=balances,
        lots=lots_list,
        adjustable=[lot for lot in lots_list if lot["status"] in ("active", "exhausted")],
        configs=active_configs,
        tab=tab,
        tabs=TABS,
        history=history,
        errors=errors or {},
        form=form or {},
        request_id=str(uuid.uuid4()),
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


@router.get("/locations/{location_id}/contacts/{contact_id}")
def contact_page(request: Request, location_id: str, contact_id: str, who: SignedIn) -> Response:
    return _contact_page(request, location_id, contact_id)


def _apply(
    request: Request,
    location_id: str,
    contact_id: str,
    m: Mutation,
    parsed: schemas.Parsed,
    kind: str,
) -> Response:
    rt = runtime(request)
    prefix = "adjust" if kind == "adjust" else "grant"
    if parsed.ok:
        with rt.db.unit_of_work() as session:
            loc = location_or_404(session, location_id)
            contact = find_for_read(session, location_id, contact_id)
            if contact is None:
                raise NotFound(f"There is no contact {contact_id!r} in {location_id!r}.")
            run = actions.adjust if kind == "adjust" else actions.grant
            reply, problem = run(
                session,
                rt.clock,
                actor=m.who.actor,
                correlation_id=correlation_id(request),
                location=loc,
                contact=contact,
                values=parsed.values,
            )
        if reply is not None and reply.body.get("ok"):
            notice = "adjusted" if kind == "adjust" else "granted"
            return see_other(
                f"/admin/locations/{location_id}/contacts/{contact.id}?tab=ledger&notice={notice}"
            )
        field = "amount" if kind == "adjust" else "product_config_id"
        parsed.errors[field] = problem or actions.explain(reply.body if reply else {})
    errors = {f"{prefix}_{k}": v for k, v in parsed.errors.items()}
    return _contact_page(request, location_id, contact_id, errors=errors, form=m.form, status=422)


def _fields(m: Mutation, prefix: str) -> dict[str, str]:
    """The form's fields without their prefix (the page's two forms keep their ids apart)."""
    return {k.removeprefix(prefix): v for k, v in m.form.items()}


@router.post("/locations/{location_id}/contacts/{contact_id}/adjust")
def adjust(request: Request, location_id: str, contact_id: str, m: Write) -> Response:
    return _apply(
        request, location_id, contact_id, m, schemas.adjustment(_fields(m, "adjust_")), "adjust"
    )


@router.post("/locations/{location_id}/contacts/{contact_id}/grant")
def grant(request: Request, location_id: str, contact_id: str, m: Write) -> Response:
    return _apply(
        request, location_id, contact_id, m, schemas.manual_grant(_fields(m, "grant_")), "grant"
    )
