"""One way to record a change: who, what, when, before and after.

The UI and the CLI call `record` in the same transaction as the change, so the log never holds a
change that was rolled back, nor misses one that was committed.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from kotally.audit import repository
from kotally.db.models import AdminUser, ApiClient, AuditEntry, Location, ProductConfig
from kotally.kit.clock import Clock, isoformat

Snapshot = dict[str, Any]
PAGE_SIZE_MAX = 100


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (containers)
        return "cli"


def record(
    session: Session,
    clock: Clock,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    location_id: str | None,
    before: Snapshot | None = None,
    after: Snapshot | None = None,
) -> None:
    repository.insert(
        session,
        AuditEntry(
            actor=actor,
            action=action,
            entity=entity,
            entity_id=entity_id,
            location_id=location_id,
            before=before,
            after=after,
            at=clock.now(),
        ),
    )


def page(
    session: Session, location_id: str | None, before_id: int | None, limit: int
) -> Sequence[AuditEntry]:
    return repository.page(session, location_id, before_id, min(limit, PAGE_SIZE_MAX))


def location(loc: Location) -> Snapshot:
    return {
        "name": loc.name,
        "timezone": loc.timezone,
        "billing_status": loc.billing_status,
        "cancellation_window_hours": loc.cancellation_window_hours,
    }


def client(c: ApiClient) -> Snapshot:
    return {
        "name": c.name,
        "scopes": sorted(c.scope_set),
        "active": c.active,
        "rate_limit_per_second": c.rate_limit_per_second,
        "rotated_at": isoformat(c.rotated_at),
    }


def config(c: ProductConfig) -> Snapshot:
    return {
        "name": c.name,
        "type": c.type,
        "credits": c.credits,
        "expiry_days": c.expiry_days,
        "active": c.active,
        "calendars": c.linked("calendar"),
        "ghl_products": c.linked("ghl_product"),
        "stripe_prices": c.linked("stripe_price"),
    }


def user(u: AdminUser) -> Snapshot:
    return {"email": u.email, "role": u.role, "active": u.active}


def changed(before: Snapshot | None, after: Snapshot | None) -> Sequence[tuple[str, Any, Any]]:
    """(field, before, after) of every field that differs, for the audit page."""
    old, new = before or {}, after or {}
    return [
        (k, old.get(k), new.get(k))
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    ]
