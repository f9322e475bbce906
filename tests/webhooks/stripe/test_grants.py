"""Grants from checkout sessions and invoices, in both API-version layouts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.factories import make_config, update_location
from tests.webhooks.stripe import events as ev
from tests.webhooks.stripe.conftest import StripeHooks


def test_checkout_with_line_items_grants_one_lot_per_unit(hooks: StripeHooks) -> None:
    session = ev.checkout_session(line_items=[ev.checkout_line("price_pack", 2, 9000)])
    result = hooks.send(ev.event("checkout.session.completed", session))

    assert (result.status, result.outcome) == ("processed", "grant_applied")
    grants = hooks.grants()
    assert [g.external_payment_id for g in grants] == [
        "stripe:cs_test_1:pc_package_1:1",
        "stripe:cs_test_1:pc_package_1:2",
    ]
    assert all(g.provider == "stripe" for g in grants)
    assert all(g.event_type == "checkout.session.completed" for g in grants)
    assert sorted(g.amount_cents or 0 for g in grants) == [4500, 4500]
    assert {g.currency for g in grants} == {"USD"}
    assert grants[0].metadata_ is not None
    assert grants[0].metadata_["stripe_payment_intent"] == "pi_checkout_1"
    assert result.effects == [
        "stripe:checkout.session.completed:cs_test_1:pc_package_1:1",
        "stripe:checkout.session.completed:cs_test_1:pc_package_1:2",
    ]
    assert hooks.live_credits() == 20
    assert hooks.check()["reason_code"] == "eligible"
    hooks.clean()


def test_checkout_without_line_items_uses_metadata_product_config_id(hooks: StripeHooks) -> None:
    session = ev.checkout_session(
        metadata={"product_config_id": "pc_package_1", "ghl_contact_id": "ghl_ada"}
    )
    result = hooks.send(ev.event("checkout.session.completed", session))

    assert result.status == "processed"
    (lot,) = hooks.lots()
    assert lot.credits_granted == 10
    assert hooks.ledger.check(ghl_contact_id="ghl_ada")["reason_code"] == "eligible"


def test_contact_hints_and_entries_carry_actor_and_correlation(hooks: StripeHooks) -> None:
    session = ev.checkout_session(
        metadata={"product_config_id": "pc_package_1"}, client_reference_id="member_42"
    )
    hooks.send(ev.event("checkout.session.completed", session), correlation_id="corr-stripe-1")

    (entry,) = hooks.entries()
    assert (entry.actor, entry.correlation_id, entry.kind) == (
        "webhook:stripe",
        "corr-stripe-1",
        "grant",
    )
    assert hooks.ledger.check(external_contact_id="member_42")["reason_code"] == "eligible"


@pytest.mark.parametrize(
    ("mode", "payment_status", "outcome"),
    [
        ("payment", "unpaid", "payment_pending"),
        ("subscription", "paid", "granted_by_invoice"),
        ("setup", "no_payment_required", "not_a_payment"),
    ],
)
def test_checkout_that_grants_nothing_is_ignored(
    hooks: StripeHooks, mode: str, payment_status: str, outcome: str
) -> None:
    session = ev.checkout_session(
        mode=mode, payment_status=payment_status, line_items=[ev.checkout_line("price_pack")]
    )
    result = hooks.send(ev.event("checkout.session.completed", session))
    assert (result.status, result.outcome) == ("ignored", outcome)
    assert hooks.grants() == []


def test_async_payment_succeeded_grants_after_an_unpaid_completion(hooks: StripeHooks) -> None:
    unpaid = ev.checkout_session(
        payment_status="unpaid", line_items=[ev.checkout_line("price_pack")]
    )
    assert hooks.send(ev.event("checkout.session.completed", unpaid)).status == "ignored"
    paid = ev.checkout_session(line_items=[ev.checkout_line("price_pack")])
    result = hooks.send(ev.event("checkout.session.async_payment_succeeded", paid))
    assert result.outcome == "grant_applied"
    assert len(hooks.grants()) == 1


@pytest.mark.parametrize("api", [ev.NEW, ev.OLD])
def test_invoice_paid_grants_each_line(hooks: StripeHooks, api: str) -> None:
    inv = ev.invoice(
        [ev.invoice_line("price_member", api=api), ev.invoice_line("price_pack", 3, 300, api=api)],
        api=api,
    )
    result = hooks.send(ev.event("invoice.paid", inv, api=api))

    assert (result.status, result.outcome) == ("processed", "grant_applied")
    assert sorted(g.external_payment_id for g in hooks.grants()) == [
        "stripe:in_1:pc_member:1",
        "stripe:in_1:pc_package_1:1",
        "stripe:in_1:pc_package_1:2",
        "stripe:in_1:pc_package_1:3",
    ]
    assert sorted(lot.credits_granted for lot in hooks.lots()) == [8, 10, 10, 10]
    hooks.clean()


@pytest.mark.parametrize("api", [ev.NEW, ev.OLD])
def test_subscription_metadata_names_the_contact(hooks: StripeHooks, api: str) -> None:
    inv = ev.invoice(
        [ev.invoice_line("price_member", api=api)],
        api=api,
        subscription_metadata={"ghl_contact_id": "ghl_sub"},
    )
    hooks.send(ev.event("invoice.paid", inv, api=api))
    body = hooks.ledger.check(ghl_contact_id="ghl_sub", product_config_id="pc_member")
    assert body["reason_code"] == "eligible"


@pytest.mark.parametrize("invoice_first", [True, False])
def test_subscription_first_payment_grants_once(hooks: StripeHooks, invoice_first: bool) -> None:
    session = ev.checkout_session(
        mode="subscription",
        subscription="sub_1",
        invoice="in_1",
        line_items=[ev.checkout_line("price_member")],
    )
    inv = ev.invoice([ev.invoice_line("price_member")], billing_reason="subscription_create")
    first, second = (
        (ev.event("invoice.paid", inv), ev.event("checkout.session.completed", session))
        if invoice_first
        else (ev.event("checkout.session.completed", session), ev.event("invoice.paid", inv))
    )
    hooks.send(first)
    hooks.send(second)

    assert [g.event_type for g in hooks.grants()] == ["invoice.paid"]
    assert hooks.live_credits() == 8


def test_checkout_that_created_an_invoice_grants_once_with_it(hooks: StripeHooks) -> None:
    session = ev.checkout_session(invoice="in_oneoff", line_items=[ev.checkout_line("price_pack")])
    inv = ev.invoice(
        [ev.invoice_line("price_pack", subscription=None)],
        id_="in_oneoff",
        billing_reason="manual",
        subscription=None,
    )
    assert hooks.send(ev.event("checkout.session.completed", session)).outcome == "grant_applied"
    again = hooks.send(ev.event("invoice.paid", inv))
    assert (again.status, again.outcome) == ("processed", "grant_already_applied")
    assert len(hooks.grants()) == 1


def test_renewal_grants_a_new_period(hooks: StripeHooks, clock: FrozenClock) -> None:
    hooks.send(ev.event("invoice.paid", ev.invoice([ev.invoice_line("price_member")])))
    clock.advance(timedelta(days=30))
    renewal = ev.invoice(
        [ev.invoice_line("price_member")], id_="in_2", billing_reason="subscription_cycle"
    )
    result = hooks.send(ev.event("invoice.paid", renewal))

    assert result.outcome == "grant_applied"
    assert [lot.credits_granted for lot in hooks.lots()] == [8, 8]
    assert hooks.live_credits() == 16


def test_proration_lines_grant_nothing(hooks: StripeHooks) -> None:
    inv = ev.invoice(
        [
            ev.invoice_line("price_member", amount=-2000, proration=True),
            ev.invoice_line("price_member", amount=3000, proration=True),
        ],
        billing_reason="subscription_update",
    )
    result = hooks.send(ev.event("invoice.paid", inv))
    assert (result.status, result.outcome) == ("ignored", "nothing_to_grant")
    assert [s["reason"] for s in result.details["skipped"]] == ["PRORATION", "PRORATION"]
    assert hooks.grants() == []


def test_duplicates_and_redelivery_under_a_new_event_id_grant_once(hooks: StripeHooks) -> None:
    inv = ev.invoice([ev.invoice_line("price_pack", 2)])
    first = hooks.send(ev.event("invoice.paid", inv, id_="evt_a"))
    again = hooks.send(ev.event("invoice.paid", inv, id_="evt_a"))
    renamed = hooks.send(ev.event("invoice.paid", inv, id_="evt_b"))

    # A replayed request_id answers what it answered the first time: one outcome, forever.
    assert first.outcome == again.outcome == renamed.outcome == "grant_applied"
    assert first.effects == again.effects == renamed.effects
    assert len(hooks.grants()) == 2
    assert len(hooks.entries("grant")) == 2
    assert hooks.live_credits() == 20


def test_unmatched_price_grants_the_rest_and_replay_grants_what_is_missing(
    hooks: StripeHooks, db: Database, clock: FrozenClock
) -> None:
    inv = ev.invoice([ev.invoice_line("price_pack"), ev.invoice_line("price_unknown")])
    result = hooks.send(ev.event("invoice.paid", inv))
    assert (result.status, result.outcome) == ("unmatched", "CONFIG_NOT_FOUND")
    assert result.details["unmatched"][0]["price"] == "price_unknown"
    assert len(hooks.grants()) == 1

    make_config(db, clock, "pc_new", credits=3, stripe_prices=["price_unknown"])
    replay = hooks.send(ev.event("invoice.paid", inv))
    assert replay.status == "processed"
    assert sorted(lot.credits_granted for lot in hooks.lots()) == [3, 10]


def test_a_price_linked_to_two_configs_is_unmatched(
    hooks: StripeHooks, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_twin", stripe_prices=["price_pack"])
    result = hooks.send(ev.event("invoice.paid", ev.invoice([ev.invoice_line("price_pack")])))
    assert result.status == "unmatched"
    assert result.details["unmatched"][0]["reason"] == "CONFIG_AMBIGUOUS"
    assert hooks.grants() == []


@pytest.mark.parametrize("quantity", [0, 101])
def test_quantity_outside_1_to_100_grants_nothing(hooks: StripeHooks, quantity: int) -> None:
    inv = ev.invoice([ev.invoice_line("price_pack", quantity)])
    result = hooks.send(ev.event("invoice.paid", inv))
    assert result.details["skipped"] == [
        {"item": inv["lines"]["data"][0]["id"], "reason": "QUANTITY_OUT_OF_RANGE"}
    ]
    assert hooks.grants() == []


def test_suspended_location_refuses_and_grants_later(
    hooks: StripeHooks, db: Database, clock: FrozenClock
) -> None:
    update_location(db, clock, billing_status="suspended")
    inv = ev.invoice([ev.invoice_line("price_pack")])
    refused = hooks.send(ev.event("invoice.paid", inv))
    assert (refused.status, refused.outcome) == ("refused", "BILLING_SUSPENDED")
    update_location(db, clock, billing_status="active")
    assert hooks.send(ev.event("invoice.paid", inv)).outcome == "grant_applied"
