"""POST /webhooks/stripe/{location_id}: the Stripe half through the endpoint and the inbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kotally.app import create_app
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.models import WebhookEvent
from kotally.kit.clock import FrozenClock
from kotally.webhooks import endpoints, inbox
from tests.factories import make_client, make_config, rows, update_location
from tests.webhooks.stripe import events as ev
from tests.webhooks.stripe.conftest import StripeHooks

pytestmark = pytest.mark.anyio
BASE_URL = "http://kotally.test"


class Stripe:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(
        self,
        evt: dict[str, Any] | bytes,
        *,
        location: str = "loc_1",
        secret: str = ev.SECRET,
        timestamp: int = ev.CREATED,
        header: str | None = None,
    ) -> httpx.Response:
        payload = evt if isinstance(evt, bytes) else ev.body(evt)
        signature = (
            header
            if header is not None
            else ev.signature(payload, secret=secret, timestamp=timestamp)
        )
        return await self.http.post(
            f"/webhooks/stripe/{location}",
            content=payload,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def stripe(
    hooks: StripeHooks, db: Database, clock: FrozenClock, settings: Settings, anyio_backend: str
) -> AsyncIterator[Stripe]:
    update_location(db, clock, stripe_webhook_secret=ev.SECRET)
    app = create_app(
        settings.model_copy(update={"expire_sweep_interval_seconds": 0}), clock=clock, db=db
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        yield Stripe(http)


def _buy() -> dict[str, Any]:
    session = ev.checkout_session(line_items=[ev.checkout_line("price_pack")])
    return ev.event("checkout.session.completed", session)


async def test_a_signed_checkout_grants_and_a_duplicate_does_not(
    stripe: Stripe, hooks: StripeHooks
) -> None:
    evt = _buy()
    first = await stripe.post(evt)
    assert first.status_code == 200
    body = first.json()
    assert (body["reason_code"], body["status"], body["outcome"]) == (
        "event_processed",
        "processed",
        "grant_applied",
    )
    again = (await stripe.post(evt)).json()
    assert (again["reason_code"], again["event_id"]) == ("event_duplicate", body["event_id"])
    assert len(hooks.grants()) == 1
    (entry,) = hooks.entries()
    assert (entry.actor, entry.correlation_id) == (
        "webhook:stripe",
        first.headers["x-correlation-id"],
    )
    (row,) = rows(hooks.db, WebhookEvent)
    assert (row.provider, row.provider_event_id, row.event_type) == (
        "stripe",
        evt["id"],
        "checkout.session.completed",
    )
    assert row.effects == ["stripe:checkout.session.completed:cs_test_1:pc_package_1:1"]


@pytest.mark.parametrize(
    "post",
    [
        {"timestamp": ev.CREATED - 301},
        {"secret": "whsec_not_this_one"},
        {"header": ""},
        {"header": "t=1,v1=nothex"},
        {"location": "loc_unknown"},
    ],
    ids=["301-s-old", "wrong-secret", "no-signature", "malformed", "unknown-location"],
)
async def test_refused_deliveries_are_401_and_store_nothing(
    stripe: Stripe, hooks: StripeHooks, post: dict[str, Any]
) -> None:
    response = await stripe.post(_buy(), **post)
    assert response.status_code == 401
    assert response.json()["reason_code"] == "SIGNATURE_INVALID"
    assert rows(hooks.db, WebhookEvent) == []
    assert hooks.grants() == []


async def test_300_s_old_is_still_accepted(stripe: Stripe) -> None:
    response = await stripe.post(_buy(), timestamp=ev.CREATED - 300)
    assert response.json()["status"] == "processed"


async def test_a_location_without_a_secret_is_401(
    stripe: Stripe, hooks: StripeHooks, db: Database, clock: FrozenClock
) -> None:
    update_location(db, clock, stripe_webhook_secret=None)
    assert (await stripe.post(_buy())).status_code == 401


async def test_malformed_events_are_answered_never_500(stripe: Stripe, hooks: StripeHooks) -> None:
    bodies: list[bytes] = [
        b"not json",
        b"[1, 2]",
        json.dumps({"type": "invoice.paid"}).encode(),
        json.dumps({"id": "evt_1", "type": "invoice.paid", "data": {"object": []}}).encode(),
        ev.body(ev.event("invoice.paid", {"id": "in_1", "lines": "many"})),
        ev.body(ev.event("charge.refunded", {"id": "ch_1", "amount": "5000"})),
    ]
    for payload in bodies:
        response = await stripe.post(payload)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            assert response.json()["status"] == "refused"
    assert hooks.entries() == []


async def test_ten_deliveries_at_once_grant_once(stripe: Stripe, hooks: StripeHooks) -> None:
    evt = _buy()
    answers = await asyncio.gather(*(stripe.post(evt) for _ in range(10)))
    reasons = sorted(a.json()["reason_code"] for a in answers)
    assert reasons == ["event_duplicate"] * 9 + ["event_processed"]
    assert len(hooks.grants()) == 1


async def test_refund_story_records_the_shortfall_on_the_inbox_row(
    stripe: Stripe, hooks: StripeHooks
) -> None:
    inv = ev.event("invoice.paid", ev.invoice([ev.invoice_line("price_pack")]))
    refund = ev.event("charge.refunded", ev.charge(amount_refunded=5000, payment_intent="pi_sub_1"))
    await stripe.post(inv)
    for i in range(4):
        hooks.ledger.deduct(external_contact_id="cus_1", external_ref=f"class_{i}")

    early = (await stripe.post(refund)).json()
    assert (early["status"], early["outcome"]) == ("unmatched", "PAYMENT_NOT_FOUND")
    link = ev.event("invoice_payment.paid", ev.invoice_payment("in_1", "pi_sub_1"))
    assert (await stripe.post(link)).json()["outcome"] == "invoice_payment_linked"
    redelivered = dict(refund, id="evt_refund_again")
    late = (await stripe.post(redelivered)).json()
    assert (late["status"], late["outcome"]) == ("processed", "credits_voided")

    stored = {row.provider_event_id: row for row in rows(hooks.db, WebhookEvent)}
    assert stored["evt_refund_again"].details["credits_shortfall"] == 4
    assert stored["evt_refund_again"].details["credits_clawed_back"] == 6
    assert [lot.status for lot in hooks.lots()] == ["voided"]
    hooks.clean()


async def test_disputed_credits_are_refused_by_check_eligibility(
    stripe: Stripe, hooks: StripeHooks, db: Database, clock: FrozenClock, settings: Settings
) -> None:
    token = make_client(db, clock, secret_key=settings.secret_key).token
    check = {
        "location_id": "loc_1",
        "external_contact_id": "cus_1",
        "product_config_id": "pc_package_1",
        "amount": 1,
    }
    auth = {"Authorization": f"Bearer {token}"}

    async def eligibility() -> str:
        response = await stripe.http.post(
            "/api/v2/entitlements/check-eligibility", json=check, headers=auth
        )
        return str(response.json()["reason_code"])

    await stripe.post(_buy())
    assert await eligibility() == "eligible"
    await stripe.post(ev.event("charge.dispute.created", ev.dispute()))
    assert await eligibility() == "NO_ENTITLEMENT"
    await stripe.post(ev.event("charge.dispute.closed", ev.dispute("won")))
    assert await eligibility() == "eligible"
    await stripe.post(ev.event("charge.dispute.closed", ev.dispute("lost", id_="dp_2")))
    assert await eligibility() == "NO_ENTITLEMENT"
    assert [lot.status for lot in hooks.lots()] == ["voided"]


async def test_other_event_types_are_ignored(stripe: Stripe) -> None:
    response = await stripe.post(ev.event("customer.created", {"id": "cus_1"}))
    assert (response.json()["reason_code"], response.json()["status"]) == (
        "event_ignored",
        "ignored",
    )


async def test_an_unmatched_invoice_is_granted_by_replay_once_its_price_is_linked(
    stripe: Stripe, hooks: StripeHooks, db: Database, clock: FrozenClock, settings: Settings
) -> None:
    inv = ev.event("invoice.paid", ev.invoice([ev.invoice_line("price_later")]))
    first = (await stripe.post(inv)).json()
    assert (first["status"], first["outcome"]) == ("unmatched", "CONFIG_NOT_FOUND")

    make_config(db, clock, "pc_later", credits=4, stripe_prices=["price_later"])
    event_id = uuid.UUID(first["event_id"])
    replayed = inbox.replay(db, clock, settings, endpoints.provider_of, event_id)
    assert (replayed.status, replayed.outcome) == ("processed", "grant_applied")
    assert [lot.credits_granted for lot in hooks.lots()] == [4]
