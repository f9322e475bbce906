"""INSTALL and UNINSTALL of the Kotally Marketplace app in a GHL location (webhooks.md §3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kotally.db.models import Location
from kotally.errors import OperatorError
from kotally.kit.clock import Clock
from kotally.locations import service as locations
from kotally.webhooks.ghl.fields import hint_name
from kotally.webhooks.handling import Result


def usable(location: Location) -> bool:
    """A location's GHL events are acted on unless its app was uninstalled."""
    return location.ghl_uninstalled_at is None


def apply(
    session: Session, clock: Clock, location_id: str | None, payload: dict[str, Any]
) -> Result | None:
    kind = payload.get("type")
    if kind not in ("INSTALL", "UNINSTALL"):
        return None
    if location_id is None:
        return Result("ignored", "location_missing")  # an agency-level install
    location = session.get(Location, location_id, with_for_update=True)
    now = clock.now()
    if kind == "UNINSTALL":
        if location is None:
            return Result("ignored", "location_unknown")
        location.ghl_uninstalled_at = now
        location.updated_at = now
        return Result("processed", "location_uninstalled")
    if location is None:
        name = hint_name(payload.get("locationName")) or hint_name(payload.get("name"))
        try:
            with session.begin_nested():
                location = locations.create(
                    session,
                    clock,
                    location_id=location_id,
                    name=name or location_id,
                    billing_status="trialing",
                )
                location.ghl_installed_at = now
                session.flush()
            return Result("processed", "location_created")
        except (IntegrityError, OperatorError):
            # Another INSTALL of this new location committed first (seen by create's own check,
            # or by the unique key it waited on): this one installs it again.
            location = session.get(
                Location, location_id, with_for_update=True, populate_existing=True
            )
            if location is None:
                raise
    location.ghl_installed_at = now
    location.ghl_uninstalled_at = None
    location.updated_at = now
    return Result("processed", "location_installed")
