"""Grants from paid checkout sessions and invoices (webhooks.md §4).

Each unit of each matched item is one grant. Its `external_payment_id` is
`stripe:<invoice or session>:<product config>:<n>` — keyed on the invoice whenever there is one,
so a checkout session that created an invoice and that invoice's `invoice.paid` grant once —
and its `request_id` is `stripe:<event type>:<session or invoice>:<product config>:<n>`.
Everything is planned (and validated) before the first grant, so an event is never half applied.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kotally.configs import repository as configs
from kotally.db.models import ProductConfig
from kotally.errors import IdempotencyKeyReused
from kotally.ledger import grants
from kotally.ledger import repository as ledger_repository
from kotally.ledger.schemas import GrantRequest
from kotally.webhooks.handling import EventContext, Result
from kotally.webhooks.stripe import repository
from kotally.webhooks.stripe.fields import PayloadError
from kotally.webhooks.stripe.keys import key
from kotally.webhooks.stripe.purchases import QUANTITY_MAX, Item, Purchase


@dataclass(frozen=True)
class _Unit:
    request: GrantRequest


def apply(ctx: EventContext, event_type: str, purchase: Purchase) -> Result:
    units, unmatched, skipped = _plan(ctx, event_type, purchase)
    skipped = purchase.skipped + skipped
    if purchase.invoice_id and purchase.payment_intent_id:
        repository.link_invoice_payment(
            ctx.session,
            ctx.location.id,
            purchase.invoice_id,
            purchase.payment_intent_id,
            ctx.clock.now(),
        )
    applied: list[dict[str, Any]] = []
    effects: list[str] = []
    for unit in units:
        body = _grant(ctx, unit.request)
        if not body.get("ok"):  # BILLING_SUSPENDED: the first unit refuses, nothing was written
            return Result("refused", body.get("reason_code"), details={"grants": applied})
        _link(ctx, purchase, unit.request.external_payment_id)
        applied.append(
            {
                "external_payment_id": unit.request.external_payment_id,
                "product_config_id": unit.request.product_config_id,
                "reason_code": body.get("reason_code"),
                "entitlement_id": body.get("entitlement_id"),
            }
        )
        effects.append(unit.request.request_id)
    return _result(applied, effects, unmatched, skipped)


def _result(
    applied: list[dict[str, Any]],
    effects: list[str],
    unmatched: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
) -> Result:
    details: dict[str, Any] = {"grants": applied}
    if unmatched:
        details["unmatched"] = unmatched
    if skipped:
        details["skipped"] = skipped
    if unmatched:
        return Result("unmatched", "CONFIG_NOT_FOUND", effects, details)
    if not applied:
        return Result("ignored", "nothing_to_grant", effects, details)
    fresh = any(g["reason_code"] == "grant_applied" for g in applied)
    return Result(
        "processed", "grant_applied" if fresh else "grant_already_applied", effects, details
    )


def _plan(
    ctx: EventContext, event_type: str, purchase: Purchase
) -> tuple[list[_Unit], list[dict[str, Any]], list[dict[str, Any]]]:
    units: list[_Unit] = []
    unmatched: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    ordinal: dict[str, int] = defaultdict(int)
    for item in purchase.items:
        quantity = 1 if item.quantity is None else item.quantity
        if not 1 <= quantity <= QUANTITY_MAX:
            skipped.append({"item": item.label, "reason": "QUANTITY_OUT_OF_RANGE"})
            continue
        config, reason = _match(ctx, item)
        if config is None:
            unmatched.append({"item": item.label, "price": item.price_id, "reason": reason})
            continue
        for index, amount in enumerate(_split(item.amount_cents, quantity)):
            ordinal[config.config_id] += 1
            n = ordinal[config.config_id]
            units.append(_Unit(_request(ctx, event_type, purchase, item, config, n, amount, index)))
    return units, unmatched, skipped


def _match(ctx: EventContext, item: Item) -> tuple[ProductConfig | None, str]:
    if item.config_id is not None:
        config = configs.get_active(ctx.session, ctx.location.id, item.config_id)
        return config, "CONFIG_NOT_FOUND"
    if item.price_id is None:
        return None, "NO_PRICE"
    linked = configs.active_for_link(ctx.session, ctx.location.id, "stripe_price", item.price_id)
    if len(linked) != 1:
        return None, "CONFIG_NOT_FOUND" if not linked else "CONFIG_AMBIGUOUS"
    return linked[0], ""


def _split(amount_cents: int | None, quantity: int) -> list[int | None]:
    """The line's amount over its units, the remainder on the first, so they add up."""
    if amount_cents is None:
        return [None] * quantity
    share, rest = divmod(amount_cents, quantity)
    return [share + rest, *([share] * (quantity - 1))]


def _request(
    ctx: EventContext,
    event_type: str,
    purchase: Purchase,
    item: Item,
    config: ProductConfig,
    n: int,
    amount_cents: int | None,
    index: int,
) -> GrantRequest:
    contact = purchase.contact
    metadata = {
        "stripe_price": item.price_id,
        "stripe_line": item.label,
        "stripe_payment_intent": purchase.payment_intent_id,
        "stripe_invoice": purchase.invoice_id,
        "stripe_checkout_session": purchase.checkout_session_id,
        "stripe_subscription": purchase.subscription_id,
        "stripe_billing_reason": purchase.billing_reason,
        "unit": index + 1,
    }
    data = {
        "location_id": ctx.location.id,
        "request_id": key(event_type, purchase.object_id, config.config_id, n),
        "external_payment_id": key(purchase.payment_key, config.config_id, n),
        "ghl_contact_id": contact.ghl_contact_id,
        "external_contact_id": contact.external_contact_id,
        "product_config_id": config.config_id,
        "provider": "stripe",
        "event_type": event_type,
        "amount_cents": amount_cents,
        "currency": purchase.currency,
        "paid_at": purchase.paid_at.isoformat() if purchase.paid_at else None,
        "email": contact.email,
        "name": contact.name,
        "external_ref": purchase.object_id,
        "metadata": {k: v for k, v in metadata.items() if v is not None},
    }
    try:
        return GrantRequest.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "data.object"
        raise PayloadError(where, error["msg"]) from None


def _grant(ctx: EventContext, request: GrantRequest) -> dict[str, Any]:
    try:
        return grants.grant(ctx.ledger(), request).body
    except IdempotencyKeyReused:
        # The same Stripe object seen again with a different detail (a new event's time, say):
        # its grant was made the first time; external_payment_id says which.
        return {"ok": True, "reason_code": "grant_already_applied"}


def _link(ctx: EventContext, purchase: Purchase, external_payment_id: str) -> None:
    grant = ledger_repository.grant_by_payment(ctx.session, ctx.location.id, external_payment_id)
    if grant is None:
        return
    repository.link_grant(
        ctx.session,
        ctx.location.id,
        grant.id,
        payment_intent_id=purchase.payment_intent_id,
        invoice_id=purchase.invoice_id,
        checkout_session_id=purchase.checkout_session_id,
        subscription_id=purchase.subscription_id,
        now=ctx.clock.now(),
    )
