"""Missing and wrong-typed fields: never an exception, never half applied."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from kotally.webhooks.stripe import PayloadError, event_key, event_type
from tests.webhooks.stripe import events as ev
from tests.webhooks.stripe.conftest import StripeHooks

WRONG = [None, 7, -1, "x", "", [], {}, True, 1.5, "a" * 300, "bad\x00id"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _mutated(event: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(event)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copied


def _samples() -> list[dict[str, Any]]:
    two_units = [ev.checkout_line("price_pack", 2, 10000)]
    return [
        ev.event("checkout.session.completed", ev.checkout_session(line_items=two_units)),
        ev.event("invoice.paid", ev.invoice([ev.invoice_line("price_pack", 2)])),
        ev.event(
            "invoice.paid",
            ev.invoice([ev.invoice_line("price_pack", 2, api=ev.OLD)], api=ev.OLD),
            api=ev.OLD,
        ),
        ev.event("invoice_payment.paid", ev.invoice_payment()),
        ev.event("charge.refunded", ev.charge(amount_refunded=2500)),
        ev.event("charge.dispute.created", ev.dispute()),
        ev.event("charge.dispute.closed", ev.dispute("lost")),
    ]


@pytest.mark.parametrize("index", range(len(_samples())), ids=lambda i: _samples()[i]["type"])
def test_every_field_of_the_wrong_type_is_answered(hooks: StripeHooks, index: int) -> None:
    sample = _samples()[index]
    # Something to refund or dispute: a paid checkout of pi_checkout_1 (2 lots of 10).
    buy = ev.checkout_session(line_items=[ev.checkout_line("price_pack", 2, 10000)], id_="cs_base")
    hooks.send(ev.event("checkout.session.completed", buy))
    for path in list(_paths(sample)):
        for value in WRONG:
            before = len(hooks.entries())
            result = hooks.send(_mutated(sample, path, value))
            assert result.status in {"processed", "refused", "unmatched", "ignored"}
            if result.outcome == "INVALID_PAYLOAD":
                assert len(hooks.entries()) == before, (path, value)
                assert result.details["field"]
    hooks.clean()


def test_an_event_without_data_is_refused_with_the_field(hooks: StripeHooks) -> None:
    for broken in ({"id": "evt_1", "type": "invoice.paid"}, {"type": "invoice.paid", "data": []}):
        result = hooks.send(broken)
        assert (result.status, result.outcome) == ("refused", "INVALID_PAYLOAD")


def test_an_invoice_naming_no_contact_is_refused_whole(hooks: StripeHooks) -> None:
    inv = ev.invoice([ev.invoice_line("price_pack"), ev.invoice_line("price_member")])
    inv["customer"] = None
    result = hooks.send(ev.event("invoice.paid", inv))
    assert (result.status, result.outcome) == ("refused", "INVALID_PAYLOAD")
    assert result.details["field"] == "data.object.customer"
    assert hooks.grants() == []


def test_a_bad_second_line_refuses_the_whole_invoice(hooks: StripeHooks) -> None:
    inv = ev.invoice([ev.invoice_line("price_pack"), ev.invoice_line("price_member")])
    inv["lines"]["data"][1]["quantity"] = "2"
    result = hooks.send(ev.event("invoice.paid", inv))
    assert result.outcome == "INVALID_PAYLOAD"
    assert result.details["field"] == "data.object.lines.data[1].quantity"
    assert hooks.grants() == []


def test_unknown_types_are_ignored(hooks: StripeHooks) -> None:
    for kind in ("customer.created", "payment_intent.succeeded", 42, None):
        result = hooks.send({"id": "evt_x", "type": kind, "data": {"object": {}}})
        assert result.status == "ignored"


def test_event_key_is_the_event_id_and_refuses_anything_else() -> None:
    assert event_key({"id": "evt_123"}) == "evt_123"
    for broken in ({}, {"id": 5}, {"id": ""}, {"id": "e" * 256}):
        with pytest.raises(PayloadError):
            event_key(broken)


def test_event_type_is_a_bounded_string() -> None:
    assert event_type({"type": "invoice.paid"}) == "invoice.paid"
    assert event_type({"type": 3}) == event_type({}) == "unknown"
    assert len(event_type({"type": "x" * 500})) == 128
