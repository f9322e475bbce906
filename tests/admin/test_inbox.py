"""The webhook inbox pages: list and filters, an event's page, replay; the Stripe secret form."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from kotally.app import create_app
from kotally.config import Settings
from kotally.configs import service as configs
from kotally.db.engine import Database
from kotally.db.models import AuditEntry, Grant, Location, WebhookEvent
from kotally.kit.clock import FrozenClock
from tests.admin.conftest import AdminClient, BrowserFactory
from tests.factories import Ledger, rows
from tests.webhooks.conftest import Signer


def order(order_id: str, product: str) -> dict[str, Any]:
    """A paid GHL order of one item, shaped like GHL's."""
    return {
        "type": "OrderStatusUpdate",
        "webhookId": f"wh-{order_id}",
        "locationId": "loc_1",
        "_id": order_id,
        "contactId": "ghl_member",
        "status": "completed",
        "currency": "USD",
        "amount": 49.0,
        "items": [
            {
                "name": "Drop-in",
                "qty": 1,
                "product": {"_id": product, "name": "Drop-in"},
                "price": {"_id": f"price_{product}", "type": "one_time", "amount": 49.0},
            }
        ],
    }


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def admin_settings(settings: Settings, signer: Signer) -> Settings:
    return settings.model_copy(
        update={
            "expire_sweep_interval_seconds": 0,
            "ghl_webhook_ed25519_public_key": signer.ed_public_pem,
        }
    )


@pytest.fixture
def send(signer: Signer, new_browser: BrowserFactory) -> Any:
    provider = new_browser()  # GHL: no session of its own

    def post(payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **signer.headers(body)}
        response = provider.http.post("/webhooks/ghl", content=body, headers=headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    return post


def test_an_unmatched_order_is_listed_shown_and_replayed_after_its_config_is_linked(
    owner: AdminClient, send: Any, db: Database, clock: FrozenClock, ledger: Ledger
) -> None:
    answer = send(order("ord_unmatched", "prod_dropin"))
    assert answer["status"] == "unmatched"
    event_id = answer["event_id"]

    listing = owner.get("/admin/webhooks?status=unmatched")
    assert listing.status_code == 200
    assert f"/admin/webhooks/{event_id}" in listing.text
    assert "OrderStatusUpdate" in listing.text
    assert "unmatched" in owner.get("/admin").text  # the overview counts it

    page = owner.get(f"/admin/webhooks/{event_id}")
    assert page.status_code == 200
    assert "prod_dropin" in page.text  # the stored payload
    assert f'action="/admin/webhooks/{event_id}/replay"' in page.text

    with db.unit_of_work() as session:
        configs.update(
            session, clock, location_id="loc_1", config_id="pc_other", ghl_products=["prod_dropin"]
        )
    replayed = owner.post(f"/admin/webhooks/{event_id}/replay")
    assert replayed.status_code == 303
    assert "processed" in owner.get(replayed.headers["location"]).text
    grants = rows(db, Grant)
    assert [(g.provider, g.event_type) for g in grants] == [("ghl", "OrderStatusUpdate")]
    audit = [a for a in rows(db, AuditEntry) if a.action == "webhook.replay"]
    assert len(audit) == 1
    assert audit[0].actor == "admin:owner@example.com"
    assert audit[0].before == {"status": "unmatched"}

    # Processed now: no second replay, and the grant stays single.
    again = owner.post(f"/admin/webhooks/{event_id}/replay")
    assert again.status_code == 422
    assert "only failed or unmatched" in again.text
    assert len(rows(db, Grant)) == 1


def test_filters_narrow_the_list(owner: AdminClient, send: Any) -> None:
    send(order("ord_a", "prod_nothing"))
    send({"type": "ContactCreate", "locationId": "loc_1", "webhookId": "wh-contact", "id": "c1"})
    ignored = owner.get("/admin/webhooks?status=ignored").text
    assert "ContactCreate" in ignored
    assert "OrderStatusUpdate" not in ignored
    assert "No events match" in owner.get("/admin/webhooks?provider=stripe").text
    # Unknown filter values fall back to every event rather than failing.
    assert owner.get("/admin/webhooks?status=bogus&provider=x&before=junk").status_code == 200


def test_an_unknown_or_malformed_event_id_is_404(owner: AdminClient) -> None:
    assert owner.get("/admin/webhooks/not-a-uuid").status_code == 404
    assert owner.get("/admin/webhooks/00000000-0000-0000-0000-000000000000").status_code == 404


def test_a_viewer_sees_the_event_but_no_replay(
    viewer: AdminClient, send: Any, db: Database
) -> None:
    event_id = send(order("ord_v", "prod_none"))["event_id"]
    page = viewer.get(f"/admin/webhooks/{event_id}")
    assert page.status_code == 200
    assert "/replay" not in page.text
    assert viewer.post(f"/admin/webhooks/{event_id}/replay").status_code == 403
    with db.unit_of_work(write=False) as session:
        stored = session.execute(select(WebhookEvent)).scalar_one()
        assert stored.status == "unmatched"
        assert stored.attempts == 1


def test_the_stripe_secret_is_set_never_shown_and_validated(
    owner: AdminClient, db: Database
) -> None:
    page = owner.get("/admin/locations/loc_1")
    assert "not set" in page.text
    bad = owner.post("/admin/locations/loc_1/stripe-secret", {"stripe_webhook_secret": "nope"})
    assert bad.status_code == 422
    assert re.search(r'id="stripe_webhook_secret-error"[^>]*>[^<]*whsec_', bad.text)
    empty = owner.post("/admin/locations/loc_1/stripe-secret", {"stripe_webhook_secret": " "})
    assert empty.status_code == 422
    secret = "whsec_test_secret_value_123"
    saved = owner.post("/admin/locations/loc_1/stripe-secret", {"stripe_webhook_secret": secret})
    assert saved.status_code == 303
    shown = owner.get(saved.headers["location"]).text
    assert secret not in shown
    assert "Replace secret" in shown
    assert rows(db, Location)[0].stripe_webhook_secret == secret
    assert all(secret not in json.dumps(a.after) for a in rows(db, AuditEntry))


def test_a_stripe_secret_set_in_the_admin_verifies_stripe_events(
    owner: AdminClient, admin_settings: Settings, clock: FrozenClock, db: Database
) -> None:
    import stripe

    secret = "whsec_admin_set_secret_456"
    owner.post("/admin/locations/loc_1/stripe-secret", {"stripe_webhook_secret": secret})
    body = json.dumps({"id": "evt_1", "type": "customer.created", "data": {"object": {}}})
    stamp = int(clock.now().timestamp())
    signature = stripe.WebhookSignature._compute_signature(f"{stamp}.{body}", secret)
    app = create_app(admin_settings, clock=clock, db=db)
    from starlette.testclient import TestClient

    with TestClient(app) as http:
        response = http.post(
            "/webhooks/stripe/loc_1",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": f"t={stamp},v1={signature}",
            },
        )
    assert response.status_code == 200, response.text
    assert response.json()["reason_code"] == "event_ignored"
