"""`/admin`: every location at a glance and the last 30 days of credit movements."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from kotally.admin import overview
from kotally.admin.web import SignedIn, render
from kotally.api.runtime import runtime
from kotally.locations import service as locations
from kotally.webhooks import repository as webhook_events

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("")
def overview_page(request: Request, who: SignedIn, location: str | None = None) -> Response:
    rt = runtime(request)
    now = rt.clock.now()
    with rt.db.unit_of_work(write=False) as session:
        all_locations = list(locations.list_all(session))
        rows = [(loc, overview.counts(session, loc, now)) for loc in all_locations]
        chosen = next((loc for loc in all_locations if loc.id == location), None)
        chosen = chosen or (all_locations[0] if all_locations else None)
        series = overview.chart(session, chosen, now) if chosen else []
        attention = webhook_events.needing_attention(session)
    return render(
        request,
        "overview.html",
        rows=rows,
        chosen=chosen,
        series=series,
        days=overview.DAYS,
        attention=attention,
        names={loc.id: loc.name for loc in all_locations},
    )
