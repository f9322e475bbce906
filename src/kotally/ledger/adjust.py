"""Adjust: an operator adds credits to a lot or removes them, with a reason (admin.md §2.5).

The same rules as every other movement: the contact's row is locked first (mutations of a contact
serialise on it), a lot never goes below zero — a removal larger than what the lot holds is
refused whole, never clamped — and a request_id applies once, whatever number of times the form
is submitted. The reason is part of the request (its fingerprint) and lands in the audit log.
"""

from __future__ import annotations

import uuid
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kotally.contacts import repository as contacts
from kotally.idempotency.service import Reply, run_once
from kotally.kit.fields import AMOUNT_MAX, Identifier, Text, rule_error
from kotally.ledger import repository
from kotally.ledger.context import LedgerContext
from kotally.ledger.lots import is_expired, move
from kotally.ledger.outcomes import Outcome, Refusal, success

REASON_CHARS_MAX = 500
# Statuses a lot can be adjusted in: voided and paused lots are out of play.
ADJUSTABLE_STATUSES = ("active", "exhausted", "expired")


class AdjustRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    location_id: Identifier
    request_id: Identifier
    contact_id: uuid.UUID
    entitlement_id: uuid.UUID
    # Signed: positive adds credits, negative removes them.
    amount: int = Field(ge=-AMOUNT_MAX, le=AMOUNT_MAX, strict=True)
    reason: Text = Field(min_length=1, max_length=REASON_CHARS_MAX)

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.amount == 0:
            raise rule_error("amount", "amount must not be zero")
        if not self.reason.strip():
            raise rule_error("reason", "give a reason")
        return self

    def payload(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def adjust(ctx: LedgerContext, req: AdjustRequest) -> Reply:
    return run_once(
        ctx.session,
        ctx.clock,
        location_id=ctx.location.id,
        request_id=req.request_id,
        endpoint="adjust",
        payload=req.payload(),
        correlation_id=ctx.correlation_id,
        operation=lambda: _adjust(ctx, req),
    )


def _adjust(ctx: LedgerContext, req: AdjustRequest) -> Outcome:
    location_id = ctx.location.id
    contact = contacts.get_locked(ctx.session, location_id, req.contact_id)
    if contact is None:
        raise Refusal("CONTACT_NOT_FOUND")
    lot = repository.lots_by_id(ctx.session, location_id, [req.entitlement_id]).get(
        req.entitlement_id
    )
    if lot is None or lot.contact_id != contact.id:
        raise Refusal("NO_ENTITLEMENT")
    if lot.status not in ADJUSTABLE_STATUSES:
        raise Refusal("ENTITLEMENT_NOT_ADJUSTABLE", status=lot.status)
    if req.amount > 0 and is_expired(lot, ctx.clock.now()):
        # Credits added to an expired lot could never be used: refuse rather than strand them.
        raise Refusal("ENTITLEMENT_EXPIRED")
    if lot.credits_remaining + req.amount < 0:
        raise Refusal("INSUFFICIENT_CREDITS", credits_remaining=lot.credits_remaining)
    before = lot.credits_remaining
    move(ctx, lot, "adjust", req.amount, request_id=req.request_id)
    return success(
        "adjusted",
        location_id=location_id,
        contact_id=str(contact.id),
        entitlement_id=str(lot.id),
        amount=req.amount,
        credits_before=before,
        credits_remaining=lot.credits_remaining,
    )
