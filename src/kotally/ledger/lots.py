"""Rules on single lots, shared by deduct, restore and expiry."""

from __future__ import annotations

from datetime import datetime

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
    """Apply a signed movement to a lot and append its ledger entry. Caller holds the lock."""
    lot.credits_remaining += amount
    if lot.status in LIVE_STATUSES:
        lot.status = "active" if lot.credits_remaining > 0 else "exhausted"
    ctx.session.add(
        LedgerEntry(
            location_id=lot.location_id,
            contact_id=lot.contact_id,
            entitlement_id=lot.id,
            product_config_id=lot.product_config_id,
            kind=kind,
            amount=amount,
            balance_after=lot.credits_remaining,
            request_id=request_id,
            external_ref=external_ref,
            appointment_time=appointment_time,
            correlation_id=ctx.correlation_id,
            actor=ctx.actor,
            created_at=ctx.clock.now(),
        )
    )
