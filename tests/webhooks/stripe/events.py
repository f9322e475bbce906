"""Stripe events shaped like the real ones, in both API-version layouts, and their signatures.

NEW is API version 2025-03-31 and later (`parent.subscription_details`, `pricing.price_details`,
no `invoice.payment_intent`, no `charge.invoice`); OLD is the layout before it.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import stripe

from tests.conftest import START

NEW = "2025-03-31.basil"
OLD = "2024-06-20"
SECRET = "whsec_test_secret_for_kotally_stripe_tests"
CREATED = int(START.timestamp())
_ids = itertools.count(1)


def _next(prefix: str) -> str:
    return f"{prefix}_test{next(_ids):06d}"


def event(
    type_: str, obj: dict[str, Any], *, api: str = NEW, id_: str | None = None
) -> dict[str, Any]:
    return {
        "id": id_ or _next("evt"),
        "object": "event",
        "api_version": api,
        "created": CREATED,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
        "data": {"object": obj},
    }


def body(evt: dict[str, Any]) -> bytes:
    return json.dumps(evt).encode()


def signature(payload: bytes, *, secret: str = SECRET, timestamp: int = CREATED) -> str:
    return stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, timestamp=timestamp
    )


def checkout_session(
    *,
    mode: str = "payment",
    payment_status: str = "paid",
    customer: str | None = "cus_1",
    metadata: dict[str, str] | None = None,
    line_items: list[dict[str, Any]] | None = None,
    payment_intent: str | None = "pi_checkout_1",
    invoice: str | None = None,
    subscription: str | None = None,
    amount_total: int = 5000,
    id_: str = "cs_test_1",
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": id_,
        "object": "checkout.session",
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "client_reference_id": None,
        "currency": "usd",
        "customer": customer,
        "customer_details": {"email": "ada@example.com", "name": "Ada Lovelace"},
        "customer_email": None,
        "invoice": invoice,
        "metadata": metadata if metadata is not None else {},
        "mode": mode,
        "payment_intent": payment_intent if mode == "payment" else None,
        "payment_status": payment_status,
        "status": "complete",
        "subscription": subscription,
    }
    if line_items is not None:
        obj["line_items"] = {"object": "list", "data": line_items, "has_more": False}
    obj.update(extra)
    return obj


def checkout_line(price: str, quantity: int = 1, amount_total: int = 5000) -> dict[str, Any]:
    return {
        "id": _next("li"),
        "object": "item",
        "amount_total": amount_total,
        "currency": "usd",
        "price": {"id": price, "object": "price", "unit_amount": amount_total // max(quantity, 1)},
        "quantity": quantity,
    }


def invoice_line(
    price: str,
    quantity: int = 1,
    amount: int = 5000,
    *,
    api: str = NEW,
    proration: bool = False,
    subscription: str | None = "sub_1",
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": _next("il"),
        "object": "line_item",
        "amount": amount,
        "currency": "usd",
        "quantity": quantity,
        "metadata": {},
    }
    if api == NEW:
        line["pricing"] = {
            "type": "price_details",
            "price_details": {"price": price, "product": "prod_1"},
            "unit_amount_decimal": str(amount // max(quantity, 1)),
        }
        line["parent"] = {
            "type": "subscription_item_details" if subscription else "invoice_item_details",
            "subscription_item_details": (
                {"subscription": subscription, "proration": proration} if subscription else None
            ),
            "invoice_item_details": None if subscription else {"proration": proration},
        }
    else:
        line["price"] = {"id": price, "object": "price"}
        line["proration"] = proration
        line["subscription"] = subscription
    return line


def invoice(
    lines: list[dict[str, Any]],
    *,
    api: str = NEW,
    id_: str = "in_1",
    billing_reason: str = "subscription_create",
    subscription: str | None = "sub_1",
    subscription_metadata: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    payment_intent: str | None = "pi_invoice_1",
    customer: str = "cus_1",
    paid_at: int = CREATED,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": id_,
        "object": "invoice",
        "amount_due": sum(line["amount"] for line in lines),
        "amount_paid": sum(line["amount"] for line in lines),
        "billing_reason": billing_reason,
        "currency": "usd",
        "customer": customer,
        "customer_email": "ada@example.com",
        "customer_name": "Ada Lovelace",
        "lines": {"object": "list", "data": lines, "has_more": False, "total_count": len(lines)},
        "metadata": metadata or {},
        "status": "paid",
        "status_transitions": {"paid_at": paid_at, "finalized_at": paid_at},
    }
    details = {"subscription": subscription, "metadata": subscription_metadata or {}}
    if api == NEW:
        obj["parent"] = {
            "type": "subscription_details" if subscription else "quote_details",
            "subscription_details": details if subscription else None,
        }
    else:
        obj["subscription"] = subscription
        obj["subscription_details"] = {"metadata": subscription_metadata or {}}
        obj["payment_intent"] = payment_intent
        obj["charge"] = "ch_" + id_
    return obj


def invoice_payment(
    invoice_id: str = "in_1", payment_intent: str = "pi_invoice_1"
) -> dict[str, Any]:
    return {
        "id": _next("inpay"),
        "object": "invoice_payment",
        "amount_paid": 5000,
        "currency": "usd",
        "invoice": invoice_id,
        "is_default": True,
        "payment": {"type": "payment_intent", "payment_intent": payment_intent},
        "status": "paid",
    }


def charge(
    *,
    amount: int = 5000,
    amount_refunded: int = 0,
    payment_intent: str | None = "pi_checkout_1",
    invoice_id: str | None = None,
    api: str = NEW,
    id_: str = "ch_1",
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": id_,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "currency": "usd",
        "customer": "cus_1",
        "paid": True,
        "payment_intent": payment_intent,
        "refunded": amount_refunded >= amount,
        "status": "succeeded",
    }
    if api == OLD:
        obj["invoice"] = invoice_id
    return obj


def dispute(
    status: str = "needs_response",
    *,
    charge_id: str = "ch_1",
    payment_intent: str | None = "pi_checkout_1",
    amount: int = 5000,
    id_: str = "dp_1",
) -> dict[str, Any]:
    return {
        "id": id_,
        "object": "dispute",
        "amount": amount,
        "charge": charge_id,
        "currency": "usd",
        "payment_intent": payment_intent,
        "reason": "fraudulent",
        "status": status,
    }
