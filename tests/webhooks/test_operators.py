"""Operators: kotally webhooks list/show/replay, the Stripe secret, metrics, the database down."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import stripe
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from kotally import cli as cli_module
from kotally.cli import common as cli_common
from kotally.config import Settings, get_settings
from kotally.db.engine import Database
from kotally.db.models import Location, WebhookEvent
from kotally.kit.clock import FrozenClock
from kotally.webhooks.ghl import bookings
from tests.conftest import TEST_SECRET
from tests.factories import make_config, rows
from tests.webhooks.conftest import Hooks, Signer, appointment

Kotally = Callable[[str], Result]


@pytest.fixture
def kotally(
    monkeypatch: pytest.MonkeyPatch, clock: FrozenClock, database_url: str
) -> Iterator[Kotally]:
    monkeypatch.setenv("KOTALLY_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("KOTALLY_DATABASE_URL", database_url)
    monkeypatch.setattr(cli_common, "CLOCK", clock)
    runner = CliRunner()

    def invoke(command: str) -> Result:
        get_settings.cache_clear()
        try:
            return runner.invoke(cli_module.main, shlex.split(command))
        finally:
            get_settings.cache_clear()

    return invoke


def _order(product: str) -> dict[str, object]:
    return {
        "type": "OrderCreate",
        "webhookId": f"wh-{product}",
        "locationId": "loc_1",
        "_id": f"ord-{product}",
        "contactId": "ghl_contact_123",
        "status": "completed",
        "items": [{"qty": 1, "product": {"_id": product}, "price": {"amount": 20}}],
    }


def test_list_show_and_replay(hooks: Hooks, kotally: Kotally, clock: FrozenClock) -> None:
    processed = hooks.send(_order("prod_pack"))
    unmatched = hooks.send(_order("prod_new"))
    listed = kotally("webhooks list --json")
    assert listed.exit_code == 0, listed.output
    assert {r["id"] for r in json.loads(listed.output)} == {
        processed["event_id"],
        unmatched["event_id"],
    }
    only = json.loads(
        kotally("webhooks list --status unmatched --provider ghl --location loc_1 --json").output
    )
    assert [r["id"] for r in only] == [unmatched["event_id"]]
    assert kotally("webhooks list --limit 1").output.count("\n") == 1
    shown = json.loads(kotally(f"webhooks show {unmatched['event_id']} --json").output)
    assert shown["payload"]["_id"] == "ord-prod_new"
    assert shown["outcome"] == "NO_MATCHING_CONFIG"
    assert shown["effects"] == []
    refused = kotally(f"webhooks replay {processed['event_id']}")
    assert refused.exit_code != 0
    assert "only failed or unmatched" in refused.output
    assert kotally("webhooks replay nope").exit_code != 0
    make_config(hooks.db, clock, "pc_new", ghl_products=["prod_new"])
    replayed = kotally(f"webhooks replay {unmatched['event_id']}")
    assert replayed.exit_code == 0, replayed.output
    assert "processed" in replayed.output
    assert hooks.balance(config="pc_new") == 10
    assert kotally(f"webhooks replay {unmatched['event_id']}").exit_code != 0
    hooks.clean()


def test_the_stripe_secret_is_stored_never_printed(hooks: Hooks, kotally: Kotally) -> None:
    secret = "whsec_test_0123456789abcdef"
    result = kotally(f"location update loc_1 --stripe-webhook-secret {secret}")
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    listed = kotally("location list")
    assert secret not in listed.output
    assert json.loads(listed.output)[0]["stripe_webhook_secret_set"] is True
    [loc] = rows(hooks.db, Location)
    assert loc.stripe_webhook_secret == secret
    assert kotally("location update loc_1 --stripe-webhook-secret sk_live_nope").exit_code != 0
    assert kotally("location update loc_1 --no-stripe-webhook-secret").exit_code == 0
    assert json.loads(kotally("location list").output)[0]["stripe_webhook_secret_set"] is False


def _stripe_event(event_id: str = "evt_1") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "customer.created",
            "created": 1776297600,
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        }
    ).encode()


def _stripe_headers(body: bytes, secret: str, at: int) -> dict[str, str]:
    signature = stripe.WebhookSignature._compute_signature(f"{at}.{body.decode()}", secret)
    return {"Stripe-Signature": f"t={at},v1={signature}", "Content-Type": "application/json"}


def test_the_stripe_route_checks_the_locations_secret(
    hooks: Hooks, kotally: Kotally, clock: FrozenClock
) -> None:
    secret = "whsec_test_route"
    body = _stripe_event()
    at = int(clock.now().timestamp())
    no_secret = hooks.http.post(
        "/webhooks/stripe/loc_1", content=body, headers=_stripe_headers(body, secret, at)
    )
    assert no_secret.status_code == 401
    assert no_secret.json()["reason_code"] == "SIGNATURE_INVALID"
    unknown = hooks.http.post(
        "/webhooks/stripe/loc_x", content=body, headers=_stripe_headers(body, secret, at)
    )
    assert unknown.status_code == 401
    kotally(f"location update loc_1 --stripe-webhook-secret {secret}")
    wrong = hooks.http.post(
        "/webhooks/stripe/loc_1", content=body, headers=_stripe_headers(body, "whsec_other", at)
    )
    assert wrong.status_code == 401
    old = hooks.http.post(
        "/webhooks/stripe/loc_1", content=body, headers=_stripe_headers(body, secret, at - 301)
    )
    assert old.status_code == 401
    assert rows(hooks.db, WebhookEvent) == []
    ok = hooks.http.post(
        "/webhooks/stripe/loc_1", content=body, headers=_stripe_headers(body, secret, at)
    )
    assert ok.status_code == 200, ok.text
    assert (ok.json()["reason_code"], ok.json()["status"]) == ("event_ignored", "ignored")
    again = hooks.http.post(
        "/webhooks/stripe/loc_1", content=body, headers=_stripe_headers(body, secret, at)
    )
    assert again.json()["reason_code"] == "event_duplicate"
    no_id = json.dumps({"type": "invoice.paid"}).encode()
    bad = hooks.http.post(
        "/webhooks/stripe/loc_1", content=no_id, headers=_stripe_headers(no_id, secret, at)
    )
    assert bad.status_code == 400
    [stored] = rows(hooks.db, WebhookEvent)
    assert (stored.provider, stored.location_id) == ("stripe", "loc_1")


def test_metrics_count_events_and_signature_failures(hooks: Hooks, clock: FrozenClock) -> None:
    hooks.post(appointment(start=clock.now(), updated=clock.now()), scheme="none")
    hooks.send({"type": "ContactCreate", "locationId": "loc_1", "webhookId": "wh_metrics"})
    text = hooks.http.get("/metrics").text
    assert 'kotally_webhook_signature_failures_total{provider="ghl"}' in text
    assert (
        'kotally_webhook_events_total{provider="ghl",status="ignored",type="ContactCreate"}' in text
    )


def _unreachable(database_url: str, tmp_path: Path) -> str:
    if make_url(database_url).get_backend_name() == "sqlite":
        return f"sqlite:///{tmp_path}/no/such/dir/kotally.db"
    return "postgresql://postgres@127.0.0.1:1/kotally"


def test_database_unreachable_is_503(
    hook_settings: Settings, clock: FrozenClock, signer: Signer, tmp_path: Path, db: Database
) -> None:
    settings = hook_settings.model_copy(
        update={"database_url": _unreachable(hook_settings.database_url, tmp_path)}
    )
    down = Database(settings)
    try:
        hooks = Hooks(down, clock, settings, signer)
        response = hooks.post(appointment(start=clock.now(), updated=clock.now()))
        assert response.status_code == 503
        assert response.json()["reason_code"] == "SERVICE_UNAVAILABLE"
    finally:
        down.dispose()


def test_a_connection_lost_mid_event_is_503_and_nothing_is_stored(
    hooks: Hooks, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks.ledger.grant()

    def lost(*args: object, **kwargs: object) -> object:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(bookings, "_lock_state", lost)
    event = appointment(start=clock.now() + timedelta(days=3), updated=clock.now())
    response = hooks.post(event)
    assert response.status_code == 503
    assert response.json()["reason_code"] == "SERVICE_UNAVAILABLE"
    assert hooks.events() == []
    monkeypatch.undo()
    # The provider retries the same delivery: it is stored and applied now.
    assert hooks.send(event)["outcome"] == "deducted"


def test_a_lock_wait_that_runs_out_is_503_and_nothing_is_stored(
    hooks: Hooks, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kotally.errors import RequestInProgress

    hooks.ledger.grant()

    def busy(*args: object, **kwargs: object) -> object:
        raise RequestInProgress()

    monkeypatch.setattr(bookings, "deduct", busy)
    response = hooks.post(appointment(start=clock.now() + timedelta(days=3), updated=clock.now()))
    assert response.status_code == 503
    assert response.json()["reason_code"] == "SERVICE_UNAVAILABLE"
    assert hooks.events() == []
    assert hooks.balance() == 10
