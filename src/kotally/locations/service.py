"""Operator actions on locations (tenants)."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from kotally.db.models import Location
from kotally.db.models.location import BILLING_STATUSES
from kotally.errors import OperatorError
from kotally.kit.clock import Clock

UNSET: object = object()


def _check(timezone: str | None, billing_status: str | None, window: object) -> None:
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise OperatorError(
                f"unknown timezone {timezone!r} (use an IANA name, e.g. Europe/Berlin)"
            ) from exc
    if billing_status is not None and billing_status not in BILLING_STATUSES:
        raise OperatorError(f"billing status must be one of {', '.join(BILLING_STATUSES)}")
    if window is not UNSET and window is not None and (not isinstance(window, int) or window < 0):
        raise OperatorError("cancellation window hours must be a whole number >= 0")


def get(session: Session, location_id: str) -> Location:
    location = session.get(Location, location_id)
    if location is None:
        raise OperatorError(f"no location {location_id!r}")
    return location


def create(
    session: Session,
    clock: Clock,
    *,
    location_id: str,
    name: str,
    timezone: str = "UTC",
    billing_status: str = "active",
    cancellation_window_hours: int | None = None,
) -> Location:
    if not location_id.strip() or len(location_id) > 255:
        raise OperatorError("location id must be 1-255 characters")
    if not name.strip():
        raise OperatorError("location name must not be empty")
    _check(timezone, billing_status, cancellation_window_hours)
    if session.get(Location, location_id) is not None:
        raise OperatorError(f"location {location_id!r} already exists")
    now = clock.now()
    location = Location(
        id=location_id,
        name=name,
        timezone=timezone,
        billing_status=billing_status,
        cancellation_window_hours=cancellation_window_hours,
        created_at=now,
        updated_at=now,
    )
    session.add(location)
    return location


def update(
    session: Session,
    clock: Clock,
    location_id: str,
    *,
    name: str | None = None,
    timezone: str | None = None,
    billing_status: str | None = None,
    cancellation_window_hours: object = UNSET,
    stripe_webhook_secret: object = UNSET,
) -> Location:
    _check(timezone, billing_status, cancellation_window_hours)
    if stripe_webhook_secret is not UNSET and stripe_webhook_secret is not None:
        _check_stripe_secret(stripe_webhook_secret)
    location = get(session, location_id)
    if name is not None:
        if not name.strip():
            raise OperatorError("location name must not be empty")
        location.name = name
    if timezone is not None:
        location.timezone = timezone
    if billing_status is not None:
        location.billing_status = billing_status
    if cancellation_window_hours is not UNSET:
        location.cancellation_window_hours = cancellation_window_hours  # type: ignore[assignment]
    if stripe_webhook_secret is not UNSET:
        location.stripe_webhook_secret = stripe_webhook_secret  # type: ignore[assignment]
    location.updated_at = clock.now()
    return location


def _check_stripe_secret(secret: object) -> None:
    """A Stripe endpoint secret: `whsec_` and printable characters (it is never printed)."""
    if (
        not isinstance(secret, str)
        or not secret.startswith("whsec_")
        or len(secret) <= len("whsec_")
        or len(secret) > 255
        or not secret.isprintable()
        or any(c.isspace() for c in secret)
    ):
        raise OperatorError("the Stripe webhook secret must look like whsec_… (from Stripe)")


def list_all(session: Session) -> Sequence[Location]:
    return session.execute(select(Location).order_by(Location.id)).scalars().all()
