"""Refunds and disputes: claw back or pause the lots a charge paid for (webhooks.md §4)."""

from __future__ import annotations

from typing import Any

from kotally.errors import IdempotencyKeyReused
from kotally.ledger.clawback import ClawbackRequest, clawback
from kotally.ledger.pause import PauseRequest, pause, resume
from kotally.webhooks.handling import EventContext, Result
from kotally.webhooks.stripe import repository
from kotally.webhooks.stripe.fields import (
    PayloadError,
    flag,
    object_id,
    required_integer,
    required_text,
    text,
)
from kotally.webhooks.stripe.keys import key

_PATH = "data.object"
# Closed disputes that leave the money with the merchant: the credits are live again.
_RELEASED = {"won": "won", "warning_closed": "closed"}


def charge_refunded(ctx: EventContext, charge: dict[str, Any]) -> Result:
    charge_id = required_text(charge, "id", _PATH)
    amount = _non_negative(charge, "amount")
    refunded = _non_negative(charge, "amount_refunded")
    full = flag(charge, "refunded", _PATH) or (amount > 0 and refunded >= amount)
    lots = repository.lots_of_payment(
        ctx.session,
        ctx.location.id,
        payment_intent_id=object_id(charge, "payment_intent", _PATH),
        invoice_id=object_id(charge, "invoice", _PATH),  # before API 2025-03-31 only
    )
    if not lots:
        # Replayable: the grant, or the invoice payment linking it, may arrive later.
        return Result("unmatched", "PAYMENT_NOT_FOUND", details={"charge": charge_id})
    if refunded == 0 and not full:
        return Result("ignored", "nothing_refunded", details={"charge": charge_id})
    request = ClawbackRequest(
        request_id=key("refund", charge_id, refunded),  # amount_refunded is cumulative
        reference=charge_id,
        lot_ids=tuple(lots),
        refunded_cents=refunded,
        amount_cents=amount,
        full=full,
        external_ref=charge_id,
    )
    return _clawed(ctx, request)


def dispute_created(ctx: EventContext, obj: dict[str, Any]) -> Result:
    dispute_id, charge_id, payment_intent_id = _dispute_ids(obj)
    row = repository.dispute(
        ctx.session,
        ctx.location.id,
        dispute_id,
        charge_id=charge_id,
        payment_intent_id=payment_intent_id,
        now=ctx.clock.now(),
    )
    if row.state != "open":  # its closing arrived first: nothing to pause any more
        return Result("ignored", "dispute_already_closed", details={"dispute": dispute_id})
    lots = _lots(ctx, payment_intent_id)
    if not lots:
        return Result("unmatched", "PAYMENT_NOT_FOUND", details={"dispute": dispute_id})
    request = PauseRequest(key("dispute", dispute_id, "pause"), dispute_id, tuple(lots))
    body = pause(ctx.ledger(), request).body
    return Result("processed", body["reason_code"], [request.request_id], _details(body))


def dispute_closed(ctx: EventContext, obj: dict[str, Any]) -> Result:
    dispute_id, charge_id, payment_intent_id = _dispute_ids(obj)
    status = text(obj, "status", _PATH)
    if status != "lost" and status not in _RELEASED:
        return Result("ignored", "dispute_status_not_handled", details={"status": status})
    row = repository.dispute(
        ctx.session,
        ctx.location.id,
        dispute_id,
        charge_id=charge_id,
        payment_intent_id=payment_intent_id,
        now=ctx.clock.now(),
    )
    row.state = "lost" if status == "lost" else _RELEASED[status]
    row.updated_at = ctx.clock.now()
    lots = _lots(ctx, payment_intent_id)
    if not lots:
        return Result("unmatched", "PAYMENT_NOT_FOUND", details={"dispute": dispute_id})
    if status == "lost":
        amount = _non_negative(obj, "amount")
        request = ClawbackRequest(
            request_id=key("dispute", dispute_id, "lost"),
            reference=charge_id,
            lot_ids=tuple(lots),
            refunded_cents=amount,
            amount_cents=amount,
            full=True,
            external_ref=dispute_id,
        )
        return _clawed(ctx, request)
    released = PauseRequest(key("dispute", dispute_id, "resume"), dispute_id, tuple(lots))
    body = resume(ctx.ledger(), released).body
    return Result("processed", body["reason_code"], [released.request_id], _details(body))


def _clawed(ctx: EventContext, request: ClawbackRequest) -> Result:
    try:
        body = clawback(ctx.ledger(), request).body
    except IdempotencyKeyReused as exc:
        return _conflict(exc)
    return Result("processed", body["reason_code"], [request.request_id], _details(body))


def _conflict(exc: IdempotencyKeyReused) -> Result:
    """The same Stripe object came back with other figures (a charge's amount is fixed, so
    only a forged or broken event does this): the first answer stands, nothing is applied."""
    return Result("refused", exc.reason_code, details={"message": exc.message})


def _details(body: dict[str, Any]) -> dict[str, Any]:
    skip = {"ok", "reason_code", "correlation_id", "message"}
    return {k: v for k, v in body.items() if k not in skip}


def _dispute_ids(obj: dict[str, Any]) -> tuple[str, str, str | None]:
    dispute_id = required_text(obj, "id", _PATH)
    charge_id = object_id(obj, "charge", _PATH)
    if charge_id is None:
        raise PayloadError(f"{_PATH}.charge", "is required")
    return dispute_id, charge_id, object_id(obj, "payment_intent", _PATH)


def _lots(ctx: EventContext, payment_intent_id: str | None) -> list[Any]:
    return repository.lots_of_payment(
        ctx.session, ctx.location.id, payment_intent_id=payment_intent_id, invoice_id=None
    )


def _non_negative(obj: dict[str, Any], name: str) -> int:
    value = required_integer(obj, name, _PATH)
    if value < 0:
        raise PayloadError(f"{_PATH}.{name}", "must be at least 0")
    return value
