"""Rules on single lots, shared by deduct, restore and expiry."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.orm.attributes import set_committed_value

from kotally.db.models import Entitlement, LedgerEntry
from kotally.db.models.entitlement import LIVE_STATUSES
from kotally.ledger.context import LedgerContext


def is_live(lot: Entitlement, now: datetime) -> bool:
    return (
        lot.status in LIVE_STATUSES
        and lot.effective_at <= now
        and (lot.expires_at is None or lot.expires_at > now)
    )


def is_expired(lot: Entitlement, now: datetime) -> bool:
    return lot.status == "expired" or (lot.expires_at is not None and lot.expires_at <= now)


# Built once, on the tables: every movement runs them, and the ORM's unit of work cost more
# than the two statements (the benchmark's profile).
_LOTS = cast(Table, Entitlement.__table__)
_ENTRIES = cast(Table, LedgerEntry.__table__)
_UPDATE_LOT = (
    update(_LOTS)
    .where(_LOTS.c.id == bindparam("v_id"))
    .values(credits_remaining=bindparam("v_remaining"), status=bindparam("v_status"))
)
_INSERT_ENTRY = insert(_ENTRIES)


def move(
    ctx: LedgerContext,
    lot: Entitlement,
    kind: str,
    amount: int,
    *,
    request_id: str | None = None,
    external_ref: str | None = None,
    appointment_time: datetime | None = None,
) -> None:
    """Apply a signed movement to a lot and append its ledger entry. Caller holds the lock.

    Written at once with two statements; the lot object is given the new values as committed
    state, so the session has nothing left to flush for it.
    """
    remaining = lot.credits_remaining + amount
    status = lot.status
    if status in LIVE_STATUSES:
        status = "active" if remaining > 0 else "exhausted"
    session = ctx.session
    # Runs first: autoflush writes a lot that is still pending (a grant's new lot) before it.
    session.execute(_UPDATE_LOT, {"v_id": lot.id, "v_remaining": remaining, "v_status": status})
    set_committed_value(lot, "credits_remaining", remaining)
    set_committed_value(lot, "status", status)
    session.execute(
        _INSERT_ENTRY,
        {
            "location_id": lot.location_id,
            "contact_id": lot.contact_id,
            "entitlement_id": lot.id,
            "product_config_id": lot.product_config_id,
            "kind": kind,
            "amount": amount,
            "balance_after": remaining,
            "request_id": request_id,
            "external_ref": external_ref,
            "appointment_time": appointment_time,
            "correlation_id": ctx.correlation_id,
            "actor": ctx.actor,
            "created_at": ctx.clock.now(),
        },
    )
