"""The webhook inbox: every provider event as stored, its outcome and effects; replay."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from kotally.admin.web import NotFound, SignedIn, Write, render, see_other
from kotally.api.runtime import runtime
from kotally.audit import tracked
from kotally.db.models import Location
from kotally.db.models.webhook_event import EVENT_STATUSES
from kotally.errors import OperatorError
from kotally.kit.clock import isoformat
from kotally.locations import service as locations
from kotally.webhooks import inbox, repository
from kotally.webhooks.endpoints import PROVIDERS

router = APIRouter(prefix="/admin/webhooks", include_in_schema=False)
PAGE_SIZE = 50
NOTICES = {"replayed": "The event was processed again; its new status is below."}


def _cursor(value: str) -> tuple[datetime, uuid.UUID] | None:
    """`<received_at ISO>_<event id>` of a page's last row; anything else is the first page."""
    at, _, event_id = value.rpartition("_")
    try:
        return datetime.fromisoformat(at), uuid.UUID(event_id)
    except ValueError:
        return None


@router.get("")
def inbox_page(
    request: Request,
    who: SignedIn,
    provider: str = "",
    status: str = "",
    location: str = "",
    before: str = "",
) -> Response:
    rt = runtime(request)
    chosen_provider = provider if provider in PROVIDERS else None
    chosen_status = status if status in EVENT_STATUSES else None
    with rt.db.unit_of_work(write=False) as session:
        all_locations = list(locations.list_all(session))
        zones = {loc.id: loc.timezone for loc in all_locations}
        chosen_location = location if location in zones else None
        rows = list(
            repository.list_events(
                session,
                location_id=chosen_location,
                provider=chosen_provider,
                status=chosen_status,
                limit=PAGE_SIZE + 1,
                before=_cursor(before) if before else None,
            )
        )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    last = rows[-1] if rows else None
    return render(
        request,
        "inbox.html",
        rows=rows,
        zones=zones,
        locations=all_locations,
        providers=sorted(PROVIDERS),
        statuses=EVENT_STATUSES,
        form={
            "provider": chosen_provider or "",
            "status": chosen_status or "",
            "location": chosen_location or "",
        },
        next_before=f"{isoformat(last.received_at)}_{last.id}" if more and last else None,
        first_page=not before,
    )


def _event_or_404(request: Request, event_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(event_id)
    except ValueError:
        raise NotFound(f"There is no webhook event {event_id!r}.") from None


def _event_page(
    request: Request, event_id: uuid.UUID, *, error: str | None = None, status: int = 200
) -> Response:
    rt = runtime(request)
    with rt.db.unit_of_work(write=False) as session:
        event = repository.get(session, event_id)
        if event is None:
            raise NotFound(f"There is no webhook event {event_id}.")
        location = session.get(Location, event.location_id) if event.location_id else None
        zone = location.timezone if location is not None else "UTC"
    return render(
        request,
        "inbox_event.html",
        status,
        event=event,
        zone=zone,
        known_location=location is not None,
        payload=json.dumps(event.payload, indent=2, ensure_ascii=False, sort_keys=True),
        details=json.dumps(event.details, indent=2, ensure_ascii=False) if event.details else "",
        replayable=event.status in inbox.REPLAYABLE,
        errors={"_form": error} if error else {},
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


@router.get("/{event_id}")
def event_page(request: Request, event_id: str, who: SignedIn) -> Response:
    return _event_page(request, _event_or_404(request, event_id))


@router.post("/{event_id}/replay")
def replay(request: Request, event_id: str, m: Write) -> Response:
    rt = runtime(request)
    key = _event_or_404(request, event_id)
    try:
        tracked.replay_webhook(rt.db, rt.clock, rt.settings, m.who.actor, key)
    except OperatorError as exc:
        return _event_page(request, key, error=str(exc).capitalize() + ".", status=422)
    return see_other(f"/admin/webhooks/{key}?notice=replayed")
