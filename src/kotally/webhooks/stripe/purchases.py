"""What a paid checkout session or invoice bought: its items, its contact, its Stripe ids.

Both API-version layouts are read: since 2025-03-31 an invoice names its subscription under
`parent.subscription_details` and a line its price under `pricing.price_details.price`; before,
`invoice.subscription`, `invoice.subscription_details` and `line.price.id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kotally.webhooks.stripe.contact import ContactHint, metadata_of, resolve
from kotally.webhooks.stripe.fields import (
    PayloadError,
    child,
    currency,
    flag,
    integer,
    items,
    object_id,
    required_text,
    text,
    timestamp,
)

QUANTITY_MAX = 100


@dataclass(frozen=True)
class Item:
    label: str  # the line's id, or where the product came from
    price_id: str | None  # matched through --stripe-price
    config_id: str | None  # named directly by metadata.product_config_id
    quantity: int | None
    amount_cents: int | None


@dataclass(frozen=True)
class Purchase:
    object_id: str  # the checkout session or invoice the event is about
    payment_key: str  # the invoice when there is one, so its checkout and invoice grant once
    contact: ContactHint
    currency: str | None
    paid_at: datetime | None
    items: list[Item]
    payment_intent_id: str | None = None
    invoice_id: str | None = None
    checkout_session_id: str | None = None
    subscription_id: str | None = None
    billing_reason: str | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)


class NotAPurchase(Exception):
    """The event is verified and well formed, but grants nothing (answered `ignored`)."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def checkout(session: dict[str, Any], created: datetime | None) -> Purchase:
    path = "data.object"
    session_id = required_text(session, "id", path)
    mode = text(session, "mode", path)
    if mode == "subscription":
        # The first invoice of the subscription (billing_reason subscription_create) grants.
        raise NotAPurchase("granted_by_invoice")
    if mode != "payment":
        raise NotAPurchase("not_a_payment")
    if text(session, "payment_status", path) in (None, "unpaid"):
        raise NotAPurchase("payment_pending")
    invoice_id = object_id(session, "invoice", path)
    return Purchase(
        object_id=session_id,
        payment_key=invoice_id or session_id,
        contact=resolve(session, path, [metadata_of(session, path)]),
        currency=currency(session, "currency", path),
        paid_at=created,
        items=_checkout_items(session, path),
        payment_intent_id=object_id(session, "payment_intent", path),
        invoice_id=invoice_id,
        checkout_session_id=session_id,
    )


def _checkout_items(session: dict[str, Any], path: str) -> list[Item]:
    line_items = child(session, "line_items", path)
    lines = items(line_items, "data", f"{path}.line_items") if line_items else []
    if lines:
        found = []
        for i, line in enumerate(lines):
            line_path = f"{path}.line_items.data[{i}]"
            found.append(
                Item(
                    label=text(line, "id", line_path) or f"line_items[{i}]",
                    price_id=object_id(line, "price", line_path),
                    config_id=None,
                    quantity=integer(line, "quantity", line_path),
                    amount_cents=integer(line, "amount_total", line_path),
                )
            )
        return found
    meta, meta_path = metadata_of(session, path)
    config_id = text(meta, "product_config_id", meta_path) if meta else None
    if config_id is None:
        raise PayloadError(
            f"{path}.line_items",
            "names no product: the session carries no line_items and no metadata.product_config_id",
        )
    amount = integer(session, "amount_total", path)
    return [Item("metadata.product_config_id", None, config_id, 1, amount)]


def invoice(inv: dict[str, Any], created: datetime | None) -> Purchase:
    path = "data.object"
    invoice_id = required_text(inv, "id", path)
    parent = child(inv, "parent", path) or {}
    new_details = child(parent, "subscription_details", f"{path}.parent") or {}
    old_details = child(inv, "subscription_details", path) or {}
    subscription = object_id(new_details, "subscription", f"{path}.parent.subscription_details")
    subscription = subscription or object_id(inv, "subscription", path)
    metadata = [
        metadata_of(inv, path),
        metadata_of(new_details, f"{path}.parent.subscription_details"),
        metadata_of(old_details, f"{path}.subscription_details"),
    ]
    transitions = child(inv, "status_transitions", path) or {}
    lines_list = child(inv, "lines", path) or {}
    found, skipped = _invoice_items(items(lines_list, "data", f"{path}.lines"), f"{path}.lines")
    if flag(lines_list, "has_more", f"{path}.lines"):
        # Lines past the first page would need an API call; say so rather than guess.
        skipped.append({"item": "lines.has_more", "reason": "LINES_NOT_IN_PAYLOAD"})
    return Purchase(
        object_id=invoice_id,
        payment_key=invoice_id,
        contact=resolve(inv, path, metadata),
        currency=currency(inv, "currency", path),
        paid_at=timestamp(transitions, "paid_at", f"{path}.status_transitions") or created,
        items=found,
        payment_intent_id=object_id(inv, "payment_intent", path),  # before 2025-03-31 only
        invoice_id=invoice_id,
        subscription_id=subscription,
        billing_reason=text(inv, "billing_reason", path),
        skipped=skipped,
    )


def _invoice_items(
    lines: list[dict[str, Any]], path: str
) -> tuple[list[Item], list[dict[str, Any]]]:
    found: list[Item] = []
    skipped: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        line_path = f"{path}.data[{i}]"
        label = text(line, "id", line_path) or f"lines[{i}]"
        amount = integer(line, "amount", line_path)
        if _is_proration(line, line_path) or (amount is not None and amount < 0):
            # A plan change's prorated remainder is not a new period: it grants nothing.
            skipped.append({"item": label, "reason": "PRORATION"})
            continue
        found.append(
            Item(label, _line_price(line, line_path), None, _quantity(line, line_path), amount)
        )
    return found, skipped


def _line_price(line: dict[str, Any], path: str) -> str | None:
    pricing = child(line, "pricing", path) or {}
    details = child(pricing, "price_details", f"{path}.pricing") or {}
    price = object_id(details, "price", f"{path}.pricing.price_details")
    return price or object_id(line, "price", path) or object_id(line, "plan", path)


def _quantity(line: dict[str, Any], path: str) -> int | None:
    return integer(line, "quantity", path)


def _is_proration(line: dict[str, Any], path: str) -> bool:
    if flag(line, "proration", path):
        return True
    parent = child(line, "parent", path) or {}
    for key in ("subscription_item_details", "invoice_item_details"):
        details = child(parent, key, f"{path}.parent") or {}
        if flag(details, "proration", f"{path}.parent.{key}"):
            return True
    return False
