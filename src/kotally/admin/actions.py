"""Credit changes made by hand from a contact's page, through the engine, with their audit row."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from kotally.audit import service as audit
from kotally.db.models import Contact, Location
from kotally.errors import IdempotencyKeyReused, RequestInProgress
from kotally.idempotency.service import Reply
from kotally.kit.clock import Clock
from kotally.ledger import adjust as adjusting
from kotally.ledger import grants
from kotally.ledger.context import LedgerContext
from kotally.ledger.outcomes import MESSAGES
from kotally.ledger.schemas import GrantRequest

# Why a refused change was refused, in words for the person at the form.
EXPLAINED = {
    "INSUFFICIENT_CREDITS": "The lot holds only {credits_remaining} credits; "
    "nothing was removed (a lot never goes below zero).",
    "NO_ENTITLEMENT": "That lot does not belong to this contact.",
    "ENTITLEMENT_NOT_ADJUSTABLE": "The lot is {status}; it cannot be adjusted.",
    "ENTITLEMENT_EXPIRED": "The lot has expired; credits added to it could never be used. "
    "Grant a product config instead.",
    "CONFIG_NOT_FOUND": "That product config is not active.",
    "BILLING_SUSPENDED": "The location's billing is suspended; grants are refused.",
}


def explain(body: dict[str, Any]) -> str:
    code = str(body.get("reason_code"))
    template = EXPLAINED.get(code)
    if template is None:
        return MESSAGES.get(code, code)
    return template.format(**body)


def adjust(
    session: Session,
    clock: Clock,
    *,
    actor: str,
    correlation_id: str,
    location: Location,
    contact: Contact,
    values: dict[str, Any],
) -> tuple[Reply | None, str | None]:
    """The engine's reply, or None and what to fix."""
    try:
        entitlement_id = uuid.UUID(values["entitlement_id"])
        req = adjusting.AdjustRequest(
            location_id=location.id,
            request_id=values["request_id"],
            contact_id=contact.id,
            entitlement_id=entitlement_id,
            amount=values["amount"],
            reason=values["reason"],
        )
    except (ValueError, ValidationError):
        return None, "The form is incomplete; reload the page and submit again."
    ctx = LedgerContext(session, clock, location, correlation_id, actor)
    reply = _once(lambda: adjusting.adjust(ctx, req))
    if isinstance(reply, str):
        return None, reply
    if reply.body.get("ok") and not reply.replayed:
        audit.record(
            session,
            clock,
            actor=actor,
            action="ledger.adjust",
            entity="entitlement",
            entity_id=str(entitlement_id),
            location_id=location.id,
            before={"credits_remaining": reply.body["credits_before"]},
            after={
                "credits_remaining": reply.body["credits_remaining"],
                "amount": req.amount,
                "reason": req.reason,
            },
        )
    return reply, None


def grant(
    session: Session,
    clock: Clock,
    *,
    actor: str,
    correlation_id: str,
    location: Location,
    contact: Contact,
    values: dict[str, Any],
) -> tuple[Reply | None, str | None]:
    if contact.ghl_contact_id is None and contact.external_contact_id is None:
        return None, "This contact has no GHL or external id to grant to."
    try:
        req = GrantRequest(
            location_id=location.id,
            request_id=values["request_id"],
            # One manual grant per submitted form: the request_id is its payment id.
            external_payment_id=f"manual:{values['request_id']}",
            ghl_contact_id=contact.ghl_contact_id,
            external_contact_id=contact.external_contact_id,
            product_config_id=values["product_config_id"],
            provider="manual",
            event_type="manual_grant",
            metadata={"reason": values["reason"], "actor": actor},
        )
    except ValidationError:
        return None, "The form is incomplete; reload the page and submit again."
    ctx = LedgerContext(session, clock, location, correlation_id, actor)
    reply = _once(lambda: grants.grant(ctx, req))
    if isinstance(reply, str):
        return None, reply
    if reply.body.get("reason_code") == "grant_applied" and not reply.replayed:
        audit.record(
            session,
            clock,
            actor=actor,
            action="ledger.grant",
            entity="entitlement",
            entity_id=str(reply.body["entitlement_id"]),
            location_id=location.id,
            before=None,
            after={
                "product_config_id": req.product_config_id,
                "credits_granted": reply.body["credits_granted"],
                "reason": values["reason"],
            },
        )
    return reply, None


def _once(call: Any) -> Reply | str:
    try:
        reply: Reply = call()
    except IdempotencyKeyReused:
        return "This form was already submitted with other values; reload the page to start again."
    except RequestInProgress:
        return "The same form is being applied right now; reload the page in a moment."
    return reply
