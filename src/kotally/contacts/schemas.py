"""The JSON forms of the contact reads (api-v2.md §4.6): field names exactly as published.

Times are ISO 8601 UTC with milliseconds and a Z, UUIDs are strings, and `product_config_id` is
always the public config id (e.g. `pc_package_1`), never the config's UUID. The records are table
rows (contacts/read_repository.py), the contact a mapped object: both have the columns' names as
attributes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row

from kotally.contacts.read_repository import ConfigRef, LotRef
from kotally.db.models import Contact
from kotally.db.models.entitlement import LIVE_STATUSES
from kotally.kit.clock import isoformat


class ContactQuery(BaseModel):
    """A contact read's parameters, once the route has validated them (contacts/endpoints.py)."""

    location_id: str
    contact_key: str  # the Kotally UUID, ghl or external id


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def contact(row: Contact | Row[Any]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "ghl_contact_id": row.ghl_contact_id,
        "external_contact_id": row.external_contact_id,
        "email": row.email,
        "name": row.name,
        "created_at": isoformat(row.created_at),
    }


def lot_status(lot: Row[Any], now: datetime) -> str:
    """The stored status, except that a lot past its expires_at shows as the sweep will leave it.

    Such a lot is no longer live (ledger.md invariant 4) even before `kotally expire` runs. Only
    live statuses turn: the sweep leaves paused and voided lots as they are.
    """
    if lot.status in LIVE_STATUSES and lot.expires_at is not None and lot.expires_at <= now:
        return "expired"
    status: str = lot.status
    return status


def entitlement_short(lot: Row[Any], config_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": str(lot.id),
        "product_config_id": config_id,
        "status": lot_status(lot, now),
        "credits_remaining": lot.credits_remaining,
        "expires_at": isoformat(lot.expires_at),
    }


def entitlement_full(lot: Row[Any], config: ConfigRef, now: datetime) -> dict[str, Any]:
    return {
        **entitlement_short(lot, config.config_id, now),
        "product_config_name": config.name,
        "type": config.type,
        "credits_granted": lot.credits_granted,
        # Adjustments may lift a lot above what was granted; nothing is "used" then.
        "credits_used": max(lot.credits_granted - lot.credits_remaining, 0),
        "effective_at": isoformat(lot.effective_at),
        "grant_id": _id(lot.grant_id),
        "created_at": isoformat(lot.created_at),
    }


def ledger_entry(entry: Row[Any], config_id: str) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "kind": entry.kind,
        "amount": entry.amount,
        "entitlement_id": str(entry.entitlement_id),
        "product_config_id": config_id,
        "entitlement_balance_after": entry.balance_after,
        "request_id": entry.request_id,
        "external_ref": entry.external_ref,
        "appointment_time": isoformat(entry.appointment_time),
        "correlation_id": entry.correlation_id,
        # Who moved the credits: api:<client id>, webhook:ghl, webhook:stripe, admin:<email>, …
        "actor": entry.actor,
        "created_at": isoformat(entry.created_at),
    }


def appointment(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "external_ref": row.external_ref,
        "calendar_id": row.calendar_id,
        "appointment_time": isoformat(row.appointment_time),
        "status": row.status,
        "credits_deducted": row.credits_deducted,
        "credits_restored": row.credits_restored,
    }


def payment(grant: Row[Any], config_id: str, lot: LotRef | None) -> dict[str, Any]:
    return {
        "id": str(grant.id),
        "external_payment_id": grant.external_payment_id,
        "provider": grant.provider,
        "event_type": grant.event_type,
        "amount_cents": grant.amount_cents,
        "currency": grant.currency,
        "paid_at": isoformat(grant.paid_at),
        "product_config_id": config_id,
        "entitlement_id": None if lot is None else str(lot.id),
        "credits_granted": None if lot is None else lot.credits_granted,
    }
