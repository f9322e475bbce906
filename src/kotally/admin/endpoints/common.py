"""Lookups every admin router shares."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kotally.admin.web import NotFound
from kotally.db.models import Location


def location_or_404(session: Session, location_id: str) -> Location:
    location = session.get(Location, location_id)
    if location is None:
        raise NotFound(f"There is no location {location_id!r}.")
    return location


FIELD_HINTS = {
    "location id": "location_id",
    "already exists": "location_id",
    "timezone": "timezone",
    "billing": "billing_status",
    "cancellation": "cancellation_window_hours",
    "product config": "config_id",
    "credits": "credits",
    "expiry": "expiry_days",
    "calendar": "calendars",
    "ghl_product": "ghl_products",
    "stripe_price": "stripe_prices",
    "scope": "scopes",
    "rate limit": "rate_limit_per_second",
    "email": "email",
    "password": "password",
    "role": "role",
    "owner": "role",
    "name": "name",
}


def field_of(message: str, default: str = "_form") -> str:
    """The form field a service's refusal is about, so the message shows next to it."""
    lowered = message.lower()
    return next((f for hint, f in FIELD_HINTS.items() if hint in lowered), default)
