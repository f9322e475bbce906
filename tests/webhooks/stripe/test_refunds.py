"""Refunds claw back unused credits: full voids, partial cumulative, used credits a shortfall."""

from __future__ import annotations

from typing import Any

import pytest

from kotally.db.models.stripe_charge import StripeChargeClawback
from kotally.webhooks.handling import Result
from tests.factories import rows
from tests.webhooks.stripe import events as ev
from tests.webhooks.stripe.conftest import StripeHooks


def _buy(hooks: StripeHooks, quantity: int = 1) -> None:
    session = ev.checkout_session(
        line_items=[ev.checkout_line("price_pack", quantity, 5000 * quantity)]
    )
    assert hooks.send(ev.event("checkout.session.completed", session)).outcome == "grant_applied"


def _refund(hooks: StripeHooks, refunded: int, amount: int = 5000, **kw: Any) -> Result:
    charge = ev.charge(amount=amount, amount_refunded=refunded, **kw)
    return hooks.send(ev.event("charge.refunded", charge))


def test_full_refund_voids_the_lot(hooks: StripeHooks) -> None:
    _buy(hooks)
    result = _refund(hooks, 5000)

    assert (result.status, result.outcome) == ("processed", "credits_voided")
    assert result.details["credits_clawed_back"] == 10
    assert result.details["credits_shortfall"] == 0
    assert result.effects == ["stripe:refund:ch_1:5000"]
    (lot,) = hooks.lots()
    assert (lot.status, lot.credits_remaining) == ("voided", 0)
    (void,) = hooks.entries("void")
    assert (void.amount, void.actor, void.external_ref) == (-10, "webhook:stripe", "ch_1")
    assert hooks.check()["reason_code"] == "NO_ENTITLEMENT"
    hooks.clean()


def test_partial_refunds_are_cumulative_and_never_claw_twice(hooks: StripeHooks) -> None:
    _buy(hooks)
    taken = []
    for refunded in (1500, 1500, 3000, 3000, 5000, 5000):  # 30 %, 60 %, 100 %, each twice
        result = _refund(hooks, refunded)
        taken.append(result.details["credits_clawed_back"])
    # A duplicate replays its first answer; only the first of each applied.
    assert taken == [3, 3, 3, 3, 4, 4]
    assert [e.amount for e in hooks.entries("void")] == [-3, -3, -4]
    (lot,) = hooks.lots()
    assert (lot.status, lot.credits_remaining) == ("voided", 0)
    (tally,) = rows(hooks.db, StripeChargeClawback)
    assert (tally.credits_target, tally.credits_clawed_back, tally.fully_refunded) == (10, 10, True)
    hooks.clean()


def test_a_late_smaller_refund_takes_nothing(hooks: StripeHooks) -> None:
    _buy(hooks)
    assert _refund(hooks, 3000).details["credits_clawed_back"] == 6
    late = _refund(hooks, 1500)
    assert late.details["credits_clawed_back"] == 0
    (lot,) = hooks.lots()
    assert (lot.status, lot.credits_remaining) == ("active", 4)


def test_partial_refund_rounds_down_over_all_the_charges_lots(hooks: StripeHooks) -> None:
    _buy(hooks, quantity=3)  # 30 credits on three lots
    result = _refund(hooks, 5000, amount=15000)  # a third: 10 credits
    assert result.details["credits_clawed_back"] == 10
    assert sorted(lot.credits_remaining for lot in hooks.lots()) == [0, 10, 10]
    result = _refund(hooks, 5001, amount=15000)  # floor(30 * 5001 / 15000) = 10: nothing more
    assert result.details["credits_clawed_back"] == 0
    hooks.clean()


def test_used_credits_are_a_shortfall_not_taken(hooks: StripeHooks) -> None:
    _buy(hooks)
    for i in range(8):
        hooks.ledger.deduct(external_contact_id="cus_1", external_ref=f"class_{i}")
    partial = _refund(hooks, 2500)  # half: 5 due, 2 left
    assert (partial.details["credits_clawed_back"], partial.details["credits_shortfall"]) == (2, 3)
    full = _refund(hooks, 5000)
    assert (full.details["credits_clawed_back"], full.details["credits_shortfall"]) == (0, 8)
    (lot,) = hooks.lots()
    assert (lot.status, lot.credits_remaining) == ("voided", 0)
    hooks.clean()


def test_refund_of_an_unknown_payment_is_unmatched(hooks: StripeHooks) -> None:
    result = _refund(hooks, 5000, payment_intent="pi_nobody")
    assert (result.status, result.outcome) == ("unmatched", "PAYMENT_NOT_FOUND")
    assert hooks.entries() == []


@pytest.mark.parametrize("link_first", [True, False])
def test_new_api_invoice_refund_finds_its_grants_through_invoice_payment(
    hooks: StripeHooks, link_first: bool
) -> None:
    inv = ev.event("invoice.paid", ev.invoice([ev.invoice_line("price_member")]))
    link = ev.event("invoice_payment.paid", ev.invoice_payment("in_1", "pi_sub_1"))
    for event in (link, inv) if link_first else (inv, link):
        assert hooks.send(event).status == "processed"

    result = _refund(hooks, 5000, payment_intent="pi_sub_1")
    assert result.outcome == "credits_voided"
    assert [lot.status for lot in hooks.lots()] == ["voided"]


def test_refund_before_the_link_is_unmatched_and_applies_on_replay(hooks: StripeHooks) -> None:
    hooks.send(ev.event("invoice.paid", ev.invoice([ev.invoice_line("price_member")])))
    refund = ev.event("charge.refunded", ev.charge(amount_refunded=5000, payment_intent="pi_sub_1"))
    assert hooks.send(refund).status == "unmatched"
    hooks.send(ev.event("invoice_payment.paid", ev.invoice_payment("in_1", "pi_sub_1")))
    assert hooks.send(refund).outcome == "credits_voided"


def test_old_api_charge_names_its_invoice(hooks: StripeHooks) -> None:
    inv = ev.invoice([ev.invoice_line("price_member", api=ev.OLD)], api=ev.OLD, payment_intent=None)
    hooks.send(ev.event("invoice.paid", inv, api=ev.OLD))
    result = _refund(hooks, 5000, payment_intent=None, invoice_id="in_1", api=ev.OLD)
    assert result.outcome == "credits_voided"


def test_old_api_invoice_payment_intent_is_linked(hooks: StripeHooks) -> None:
    inv = ev.invoice([ev.invoice_line("price_member", api=ev.OLD)], api=ev.OLD)
    hooks.send(ev.event("invoice.paid", inv, api=ev.OLD))
    result = _refund(hooks, 2500, payment_intent="pi_invoice_1")
    assert (result.outcome, result.details["credits_clawed_back"]) == ("credits_clawed_back", 4)
