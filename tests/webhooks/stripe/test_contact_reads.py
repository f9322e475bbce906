"""What Stripe events did shows in the contact reads, like an API call."""

from __future__ import annotations

from kotally.contacts import reads
from tests.webhooks.stripe import events as ev
from tests.webhooks.stripe.conftest import StripeHooks


def test_payments_entitlements_and_ledger_show_the_stripe_story(hooks: StripeHooks) -> None:
    session = ev.checkout_session(line_items=[ev.checkout_line("price_pack")])
    hooks.send(ev.event("checkout.session.completed", session), correlation_id="corr-buy")
    hooks.send(
        ev.event("charge.refunded", ev.charge(amount_refunded=2000)), correlation_id="corr-refund"
    )
    hooks.send(ev.event("charge.dispute.created", ev.dispute()), correlation_id="corr-dispute")

    with hooks.db.unit_of_work(write=False) as s:
        payments = reads.payments(s, hooks.clock, "loc_1", "cus_1")
        lots = reads.entitlements(s, hooks.clock, "loc_1", "cus_1")
        ledger = reads.ledger(s, hooks.clock, "loc_1", "cus_1")
        contact = reads.contact(s, hooks.clock, "loc_1", "cus_1")
    assert payments is not None
    assert lots is not None
    assert ledger is not None
    assert contact is not None
    (payment,) = payments["payments"]
    assert payment["provider"] == "stripe"
    assert payment["external_payment_id"] == "stripe:cs_test_1:pc_package_1:1"
    assert payment["amount_cents"] == 5000
    (lot,) = lots["entitlements"]
    assert (lot["status"], lot["credits_remaining"]) == ("paused", 6)
    entries = [(e["kind"], e["amount"], e["correlation_id"]) for e in ledger["entries"]]
    assert entries == [("void", -4, "corr-refund"), ("grant", 10, "corr-buy")]
    # The read does not show the actor (api-v2.md's entry shape has none); the rows carry it.
    assert {e.actor for e in hooks.entries()} == {"webhook:stripe"}
    assert (contact["contact"]["email"], contact["contact"]["name"]) == (
        "ada@example.com",
        "Ada Lovelace",
    )
