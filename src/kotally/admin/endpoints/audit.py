"""The audit log: every change made from the UI or the CLI, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from kotally.admin.web import SignedIn, render
from kotally.api.runtime import runtime
from kotally.audit import service as audit
from kotally.locations import service as locations

router = APIRouter(prefix="/admin", include_in_schema=False)
PAGE_SIZE = 50


@router.get("/audit")
def audit_page(
    request: Request,
    who: SignedIn,
    location: str = "",
    before: int | None = None,
) -> Response:
    rt = runtime(request)
    with rt.db.unit_of_work(write=False) as session:
        all_locations = list(locations.list_all(session))
        zones = {loc.id: loc.timezone for loc in all_locations}
        chosen = location if location in zones else None
        rows = list(audit.page(session, chosen, before, PAGE_SIZE + 1))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render(
        request,
        "audit.html",
        rows=[(row, audit.changed(row.before, row.after)) for row in rows],
        zones=zones,
        locations=all_locations,
        chosen=chosen or "",
        next_before=rows[-1].id if more else None,
        first_page=before is None,
    )
