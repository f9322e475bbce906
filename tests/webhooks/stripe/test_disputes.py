"""Disputes pause a payment's lots; won makes them live again, lost voids them."""

from __future__ import annotations

from tests.webhooks.stripe import events as ev
from tests.webhooks.stripe.conftest import StripeHooks


def _buy(hooks: StripeHooks) -> None:
    session = ev.checkout_session(line_items=[ev.checkout_line("price_pack")])
    hooks.send(ev.event("checkout.session.completed", session))


def test_created_pauses_and_check_refuses(hooks: StripeHooks) -> None:
    _buy(hooks)
    result = hooks.send(ev.event("charge.dispute.created", ev.dispute()))
    assert (result.status, result.outcome) == ("processed", "lots_paused")
    assert result.effects == ["stripe:dispute:dp_1:pause"]
    assert [lot.status for lot in hooks.lots()] == ["paused"]
    assert hooks.check()["reason_code"] == "NO_ENTITLEMENT"
    deduct = hooks.ledger.deduct(external_contact_id="cus_1")
    assert deduct["reason_code"] == "NO_ENTITLEMENT"
    hooks.clean()


def test_won_makes_the_lots_live_again(hooks: StripeHooks) -> None:
    _buy(hooks)
    hooks.ledger.deduct(external_contact_id="cus_1", amount=10)
    hooks.send(ev.event("charge.dispute.created", ev.dispute()))
    result = hooks.send(ev.event("charge.dispute.closed", ev.dispute("won")))
    assert result.outcome == "lots_resumed"
    assert [lot.status for lot in hooks.lots()] == ["exhausted"]
    hooks.clean()


def test_won_restores_an_active_lot(hooks: StripeHooks) -> None:
    _buy(hooks)
    hooks.send(ev.event("charge.dispute.created", ev.dispute()))
    hooks.send(ev.event("charge.dispute.closed", ev.dispute("won")))
    assert [lot.status for lot in hooks.lots()] == ["active"]
    assert hooks.check()["reason_code"] == "eligible"


def test_lost_voids_like_a_full_refund(hooks: StripeHooks) -> None:
    _buy(hooks)
    hooks.ledger.deduct(external_contact_id="cus_1", amount=3)
    hooks.send(ev.event("charge.dispute.created", ev.dispute()))
    result = hooks.send(ev.event("charge.dispute.closed", ev.dispute("lost")))
    assert (result.outcome, result.details["credits_clawed_back"]) == ("credits_voided", 7)
    assert result.details["credits_shortfall"] == 3
    assert [lot.status for lot in hooks.lots()] == ["voided"]
    assert [e.amount for e in hooks.entries("void")] == [-7]
    # A refund of the same charge afterwards finds nothing left to take.
    refund = hooks.send(ev.event("charge.refunded", ev.charge(amount_refunded=5000)))
    assert refund.details["credits_clawed_back"] == 0
    hooks.clean()


def test_closing_that_arrives_first_is_not_undone_by_the_late_creation(hooks: StripeHooks) -> None:
    _buy(hooks)
    hooks.send(ev.event("charge.dispute.closed", ev.dispute("won")))
    late = hooks.send(ev.event("charge.dispute.created", ev.dispute()))
    assert (late.status, late.outcome) == ("ignored", "dispute_already_closed")
    assert [lot.status for lot in hooks.lots()] == ["active"]


def test_duplicate_events_apply_once(hooks: StripeHooks) -> None:
    _buy(hooks)
    for _ in range(2):
        hooks.send(ev.event("charge.dispute.created", ev.dispute()))
        hooks.send(ev.event("charge.dispute.closed", ev.dispute("lost")))
    assert len(hooks.entries("void")) == 1


def test_refund_while_paused_keeps_the_lot_paused(hooks: StripeHooks) -> None:
    _buy(hooks)
    hooks.send(ev.event("charge.dispute.created", ev.dispute()))
    hooks.send(ev.event("charge.refunded", ev.charge(amount_refunded=2500)))
    (lot,) = hooks.lots()
    assert (lot.status, lot.credits_remaining) == ("paused", 5)
    hooks.send(ev.event("charge.dispute.closed", ev.dispute("won")))
    assert [lot.status for lot in hooks.lots()] == ["active"]
    hooks.clean()


def test_other_closed_statuses_are_ignored(hooks: StripeHooks) -> None:
    _buy(hooks)
    hooks.send(ev.event("charge.dispute.created", ev.dispute()))
    result = hooks.send(ev.event("charge.dispute.closed", ev.dispute("under_review")))
    assert (result.status, result.outcome) == ("ignored", "dispute_status_not_handled")
    assert [lot.status for lot in hooks.lots()] == ["paused"]
