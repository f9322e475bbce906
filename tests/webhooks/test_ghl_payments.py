"""GHL orders and invoices → grants per unit, unmatched items, replays (webhooks.md §3)."""

from __future__ import annotations

from typing import Any

import pytest

from kotally.db.models import Grant, LedgerEntry
from kotally.kit.clock import FrozenClock
from tests.factories import make_config, rows
from tests.webhooks.conftest import CONTACT, Hooks


def order(
    items: list[dict[str, Any]],
    *,
    order_id: str = "ord_1",
    status: str = "completed",
    type_: str = "OrderStatusUpdate",
    amount: Any = 49.99,
) -> dict[str, Any]:
    """An order event shaped like GHL's (amounts in major units)."""
    return {
        "type": type_,
        "webhookId": f"wh-{type_}-{order_id}-{status}-{len(items)}",
        "altId": "loc_1",
        "altType": "location",
        "locationId": "loc_1",
        "_id": order_id,
        "contactId": CONTACT,
        "contactSnapshot": {"id": CONTACT, "email": "member@example.com", "name": "Member Example"},
        "status": status,
        "paymentStatus": "paid",
        "currency": "USD",
        "amount": amount,
        "createdAt": "2026-04-15T10:00:00.000Z",
        "items": items,
    }


def item(product: str = "prod_pack", qty: Any = 1, amount: Any = 49.99) -> dict[str, Any]:
    return {
        "name": "10-class pack",
        "qty": qty,
        "product": {"_id": product, "name": "10-class pack", "productType": "DIGITAL"},
        "price": {
            "_id": f"price_{product}",
            "type": "one_time",
            "amount": amount,
            "currency": "USD",
        },
    }


def invoice(items: list[dict[str, Any]], invoice_id: str = "inv_1") -> dict[str, Any]:
    return {
        "type": "InvoicePaid",
        "_id": invoice_id,
        "altId": "loc_1",
        "altType": "location",
        "status": "paid",
        "currency": "EUR",
        "total": 120,
        "amountPaid": 120,
        "contactDetails": {"id": CONTACT, "name": "Member Example", "email": "member@example.com"},
        "invoiceItems": items,
        "updatedAt": "2026-04-15T11:00:00.000Z",
    }


def test_a_completed_order_grants_with_provider_ghl(hooks: Hooks) -> None:
    body = hooks.send(order([item()]))
    assert (body["status"], body["outcome"]) == ("processed", "grant_applied")
    [grant] = rows(hooks.db, Grant)
    assert grant.provider == "ghl"
    assert grant.event_type == "OrderStatusUpdate"
    assert grant.amount_cents == 4999
    assert grant.currency == "USD"
    assert grant.external_payment_id == "ghl:order:ord_1:item:0:unit:1"
    assert hooks.balance() == 10
    [entry] = rows(hooks.db, LedgerEntry)
    assert entry.actor == "webhook:ghl"
    assert entry.correlation_id == body["correlation_id"]
    hooks.clean()


def test_order_create_then_status_update_grant_once(hooks: Hooks) -> None:
    hooks.send(order([item()], type_="OrderCreate"))
    again = hooks.send(order([item()]))
    assert (again["status"], again["outcome"]) == ("processed", "grant_already_applied")
    assert len(rows(hooks.db, Grant)) == 1
    assert hooks.balance() == 10


@pytest.mark.parametrize("status", ["pending", "refunded", None])
def test_an_order_not_completed_grants_nothing(hooks: Hooks, status: str | None) -> None:
    event = order([item()])
    event["status"] = status
    assert hooks.send(event)["outcome"] == "order_not_completed"
    assert rows(hooks.db, Grant) == []


def test_quantity_grants_one_lot_per_unit(hooks: Hooks) -> None:
    body = hooks.send(order([item(qty=3)]))
    assert body["outcome"] == "grant_applied"
    assert len(rows(hooks.db, Grant)) == 3
    assert hooks.balance() == 30


@pytest.mark.parametrize("qty", [0, 101, -1, 1.5, "2", True])
def test_a_quantity_outside_1_to_100_grants_nothing(hooks: Hooks, qty: Any) -> None:
    body = hooks.send(order([item(qty=qty)]))
    assert (body["status"], body["outcome"]) == ("refused", "INVALID_QUANTITY")
    assert rows(hooks.db, Grant) == []


def test_amounts_convert_exactly(hooks: Hooks) -> None:
    hooks.send(order([item(amount=0.1), item(amount="19.99"), item(amount=1e-3)], amount=None))
    cents = sorted(g.amount_cents for g in rows(hooks.db, Grant) if g.amount_cents is not None)
    assert cents == [0, 10, 1999]


def test_an_invoice_grants_and_converts(hooks: Hooks) -> None:
    body = hooks.send(
        invoice([{"productId": "prod_pack", "priceId": "p1", "qty": 2, "amount": 60}])
    )
    assert body["outcome"] == "grant_applied"
    grants = rows(hooks.db, Grant)
    assert [(g.amount_cents, g.currency, g.event_type) for g in grants] == [
        (6000, "EUR", "InvoicePaid")
    ] * 2
    assert hooks.balance() == 20


def test_unmatched_items_then_replay_after_the_config_exists(
    hooks: Hooks, clock: FrozenClock
) -> None:
    body = hooks.send(order([item(), item("prod_member")]))
    assert body["reason_code"] == "event_processed"
    assert (body["status"], body["outcome"]) == ("unmatched", "NO_MATCHING_CONFIG")
    assert hooks.balance() == 10  # the matched item still granted
    make_config(
        hooks.db, clock, "pc_member", credits=8, type_="membership", ghl_products=["prod_member"]
    )
    replayed = hooks.replay(body["event_id"])
    assert (replayed.status, replayed.outcome) == ("processed", "grant_applied")
    assert replayed.details["grants_new"] == 1
    assert replayed.details["grants_known"] == 1
    assert hooks.balance(config="pc_member") == 8
    assert hooks.balance() == 10
    assert len(rows(hooks.db, Grant)) == 2
    hooks.clean()


def test_a_product_linked_to_several_configs_is_unmatched(hooks: Hooks, clock: FrozenClock) -> None:
    make_config(hooks.db, clock, "pc_twin", ghl_products=["prod_pack"])
    body = hooks.send(order([item()]))
    assert (body["status"], body["outcome"]) == ("unmatched", "SEVERAL_MATCHING_CONFIGS")
    assert rows(hooks.db, Grant) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"_id": None}, "_id"),
        ({"contactId": 12}, "contactId"),
        ({"items": "nope"}, "items"),
        ({"items": [1]}, "items"),
        ({"items": [{"product": "x"}]}, "items.0.product"),
    ],
)
def test_bad_order_fields_refuse_the_event(
    hooks: Hooks, change: dict[str, Any], field: str
) -> None:
    event = {**order([item()]), **change}
    body = hooks.send(event)
    assert (body["status"], body["outcome"]) == ("refused", "INVALID_PAYLOAD")
    assert hooks.event(body["event_id"]).details["field"] == field
    assert rows(hooks.db, Grant) == []


def test_bad_hints_and_amounts_are_dropped_not_fatal(hooks: Hooks) -> None:
    event = order([item(amount="lots")], amount={"x": 1})
    event["currency"] = "dollars"
    event["contactSnapshot"] = {"email": "not an email", "name": "\u0000"}
    assert hooks.send(event)["outcome"] == "grant_applied"
    [grant] = rows(hooks.db, Grant)
    assert (grant.amount_cents, grant.currency) == (None, None)
