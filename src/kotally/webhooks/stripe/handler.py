"""The Stripe event dispatcher: one handler per event type Kotally acts on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kotally.webhooks.handling import EventContext, Result
from kotally.webhooks.stripe import grants, refunds
from kotally.webhooks.stripe.fields import PayloadError, child, object_id, timestamp
from kotally.webhooks.stripe.purchases import NotAPurchase, checkout, invoice
from kotally.webhooks.stripe.repository import link_invoice_payment

_PATH = "data.object"


def event_key(event: dict[str, Any]) -> str:
    """The provider event id the inbox deduplicates on (`evt_…`)."""
    value = event.get("id")
    if not isinstance(value, str) or not value or len(value) > 255:
        raise PayloadError("id", "must be the event's id, a string of 1-255 characters")
    return value


def event_type(event: dict[str, Any]) -> str:
    value = event.get("type")
    return value[:128] if isinstance(value, str) and value else "unknown"


def handle(ctx: EventContext, event: dict[str, Any]) -> Result:
    kind = event_type(event)
    handler = _HANDLERS.get(kind)
    if handler is None:
        return Result("ignored", "event_type_not_handled")
    try:
        data = child(event, "data", "event")
        obj = child(data, "object", "data") if data is not None else None
        if obj is None:
            raise PayloadError(_PATH, "is required")
        return handler(ctx, kind, event, obj)
    except PayloadError as exc:
        # Refused before any effect: every field is read before the first ledger operation.
        return Result(
            "refused", "INVALID_PAYLOAD", details={"field": exc.field, "message": exc.message}
        )


def _purchase(ctx: EventContext, kind: str, event: dict[str, Any], obj: dict[str, Any]) -> Result:
    created = timestamp(event, "created", "event")
    try:
        purchase = invoice(obj, created) if kind == "invoice.paid" else checkout(obj, created)
    except NotAPurchase as skip:
        return Result("ignored", skip.outcome)
    return grants.apply(ctx, kind, purchase)


def _refunded(ctx: EventContext, kind: str, event: dict[str, Any], obj: dict[str, Any]) -> Result:
    return refunds.charge_refunded(ctx, obj)


def _dispute(ctx: EventContext, kind: str, event: dict[str, Any], obj: dict[str, Any]) -> Result:
    if kind == "charge.dispute.created":
        return refunds.dispute_created(ctx, obj)
    return refunds.dispute_closed(ctx, obj)


def _invoice_payment(
    ctx: EventContext, kind: str, event: dict[str, Any], obj: dict[str, Any]
) -> Result:
    """`invoice_payment.paid` (API 2025-03-31 and later): which payment intent paid which
    invoice, so that a refund of the charge finds the invoice's grants."""
    invoice_id = object_id(obj, "invoice", _PATH)
    payment = child(obj, "payment", _PATH) or {}
    payment_intent_id = object_id(payment, "payment_intent", f"{_PATH}.payment")
    if invoice_id is None:
        raise PayloadError(f"{_PATH}.invoice", "is required")
    if payment_intent_id is None:  # paid out of band, or by a charge alone: nothing to link
        return Result("ignored", "no_payment_intent")
    new = link_invoice_payment(
        ctx.session, ctx.location.id, invoice_id, payment_intent_id, ctx.clock.now()
    )
    details = {"invoice": invoice_id, "payment_intent": payment_intent_id}
    return Result(
        "processed", "invoice_payment_linked" if new else "invoice_payment_known", details=details
    )


_Handler = Callable[[EventContext, str, dict[str, Any], dict[str, Any]], Result]
_HANDLERS: dict[str, _Handler] = {
    "checkout.session.completed": _purchase,
    "checkout.session.async_payment_succeeded": _purchase,
    "invoice.paid": _purchase,
    "charge.refunded": _refunded,
    "charge.dispute.created": _dispute,
    "charge.dispute.closed": _dispute,
    "invoice_payment.paid": _invoice_payment,
}
