"""GHL orders and invoices → grants (webhooks.md §3 Payments).

Each item is matched by its GHL product id to the location's active product configs linked to
it; exactly one match grants one lot per unit of quantity (1-100) through the ledger's grant,
each unit with its own `external_payment_id` (`ghl:order:<id>:item:<i>:unit:<u>`), so that a
re-sent or replayed event grants only what is still missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kotally.configs import repository as configs
from kotally.ledger import repository
from kotally.ledger.grants import grant
from kotally.ledger.schemas import GrantRequest
from kotally.webhooks.ghl.fields import (
    PayloadError,
    cents,
    currency,
    hint_email,
    hint_name,
    identifier,
    key,
    obj,
    required_identifier,
    time,
)
from kotally.webhooks.handling import EventContext, Result

ORDER_TYPES = ("OrderCreate", "OrderStatusUpdate")
INVOICE_TYPE = "InvoicePaid"
QUANTITY_MAX = 100
# Which result wins for the event as a whole.
_RANK = {"unmatched": 3, "refused": 2, "processed": 1}


@dataclass(frozen=True)
class Item:
    index: int
    product_id: str | None
    quantity: object
    unit_cents: int | None


@dataclass(frozen=True)
class Payment:
    kind: str  # "order" | "invoice"
    id: str
    event_type: str
    contact_id: str
    email: str | None
    name: str | None
    currency: str | None
    paid_at: datetime | None
    items: list[Item]


def _list(payload: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = payload.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PayloadError(name, "must be a list of objects")
    return value


def _quantity(item: dict[str, Any]) -> object:
    for name in ("qty", "quantity"):
        if name in item:
            return item[name]
    return 1


def parse_order(event_type: str, payload: dict[str, Any]) -> Payment:
    items = []
    raw_items = _list(payload, "items")
    for index, item in enumerate(raw_items):
        path = f"items.{index}."
        product = obj(item, "product", path)
        price = obj(item, "price", path)
        unit = cents(price.get("amount")) if price is not None else None
        if unit is None and len(raw_items) == 1 and _quantity(item) == 1:
            unit = cents(payload.get("amount"))
        product_id = identifier(product, "_id", path + "product.") if product else None
        items.append(Item(index, product_id, _quantity(item), unit))
    snapshot = obj(payload, "contactSnapshot") or {}
    return Payment(
        kind="order",
        id=required_identifier(payload, "_id"),
        event_type=event_type,
        contact_id=required_identifier(payload, "contactId"),
        email=hint_email(snapshot.get("email")),
        name=hint_name(snapshot.get("name")),
        currency=currency(payload.get("currency")),
        paid_at=time(payload, "createdAt"),
        items=items,
    )


def parse_invoice(event_type: str, payload: dict[str, Any]) -> Payment:
    items = []
    for index, item in enumerate(_list(payload, "invoiceItems")):
        path = f"invoiceItems.{index}."
        items.append(
            Item(
                index,
                identifier(item, "productId", path),
                _quantity(item),
                cents(item.get("amount")),
            )
        )
    details = obj(payload, "contactDetails")
    if details is None:
        raise PayloadError("contactDetails", "is required")
    return Payment(
        kind="invoice",
        id=required_identifier(payload, "_id"),
        event_type=event_type,
        contact_id=required_identifier(details, "id", "contactDetails."),
        email=hint_email(details.get("email")),
        name=hint_name(details.get("name")),
        currency=currency(payload.get("currency")),
        paid_at=time(payload, "updatedAt") or time(payload, "createdAt"),
        items=items,
    )


def handle(ctx: EventContext, event_type: str, payload: dict[str, Any]) -> Result:
    if event_type in ORDER_TYPES:
        if payload.get("status") != "completed":
            return Result("ignored", "order_not_completed")
        payment = parse_order(event_type, payload)
    else:
        payment = parse_invoice(event_type, payload)
    if not payment.items:
        return Result("unmatched", "NO_ITEMS")
    effects: list[str] = []
    item_results: list[dict[str, Any]] = []
    granted = 0
    for item in payment.items:
        status, outcome, item_effects, new = _item(ctx, payment, item)
        effects += item_effects
        granted += new
        item_results.append(
            {
                "index": item.index,
                "product_id": item.product_id,
                "status": status,
                "outcome": outcome,
            }
        )
    already = len(effects) - granted
    worst = max(item_results, key=lambda r: _RANK[r["status"]])
    details: dict[str, Any] = {
        "items": item_results,
        "grants_new": granted,
        "grants_known": already,
    }
    if worst["status"] == "processed":
        return Result(
            "processed", "grant_applied" if granted else "grant_already_applied", effects, details
        )
    return Result(worst["status"], worst["outcome"], effects, details)


def _item(ctx: EventContext, payment: Payment, item: Item) -> tuple[str, str, list[str], int]:
    """The item's status and outcome, the grants it holds (request_ids) and how many are new."""
    if item.product_id is None:
        return "unmatched", "PRODUCT_MISSING", [], 0
    quantity = item.quantity
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not 1 <= quantity <= QUANTITY_MAX
    ):
        return "refused", "INVALID_QUANTITY", [], 0
    matches = configs.active_for_link(ctx.session, ctx.location.id, "ghl_product", item.product_id)
    if len(matches) != 1:
        outcome = "NO_MATCHING_CONFIG" if not matches else "SEVERAL_MATCHING_CONFIGS"
        return "unmatched", outcome, [], 0
    config = matches[0]
    effects: list[str] = []
    new = 0
    for unit in range(1, quantity + 1):
        payment_id = key(payment.kind, payment.id, "item", item.index, "unit", unit)
        known = repository.grant_by_payment(ctx.session, ctx.location.id, payment_id)
        if known is not None:
            effects.append(known.request_id or payment_id)
            continue
        request_id = key(
            payment.kind, payment.id, "item", item.index, "unit", unit, payment.event_type
        )
        try:
            req = GrantRequest.model_validate(
                {
                    "location_id": ctx.location.id,
                    "request_id": request_id,
                    "external_payment_id": payment_id,
                    "ghl_contact_id": payment.contact_id,
                    "product_config_id": config.config_id,
                    "provider": "ghl",
                    "event_type": payment.event_type,
                    "amount_cents": item.unit_cents,
                    "currency": payment.currency,
                    "paid_at": None if payment.paid_at is None else payment.paid_at.isoformat(),
                    "email": payment.email,
                    "name": payment.name,
                    "external_ref": payment.id,
                    "metadata": {
                        "ghl_product_id": item.product_id,
                        "item": item.index,
                        "unit": unit,
                    },
                }
            )
        except ValidationError as exc:  # pragma: no cover - every field was checked above
            raise PayloadError(f"items.{item.index}", str(exc)) from exc
        reply = grant(ctx.ledger(), req)
        outcome = str(reply.body["reason_code"])
        if not reply.body.get("ok"):
            return "refused", outcome, effects, new
        effects.append(request_id)
        new += outcome == "grant_applied"
    return "processed", "granted", effects, new
