"""The webhook inbox in Chromium: an unmatched GHL order, replayed from its page after its
product config was linked, grants once. The event is stored through the inbox service on the
live server's database (signatures are the webhook suite's business)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, expect

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from kotally.webhooks import inbox
from kotally.webhooks.endpoints import GHL
from tests.browser.test_admin import OWNER, Live, _page, _shot, _sign_in, chromium, live
from tests.factories import update_config

pytestmark = pytest.mark.slow
__all__ = ["chromium", "live"]  # the fixtures this module borrows


def _unmatched_order(db: Database, settings: Settings) -> str:
    payload = {
        "type": "OrderStatusUpdate",
        "webhookId": "wh-browser-order",
        "locationId": "loc_1",
        "_id": "ord_browser",
        "contactId": "ghl_ada",
        "status": "completed",
        "currency": "EUR",
        "amount": 120,
        "items": [
            {
                "name": "Intro month",
                "qty": 1,
                "product": {"_id": "prod_intro", "name": "Intro month"},
                "price": {"_id": "price_intro", "type": "one_time", "amount": 120},
            }
        ],
    }
    incoming = inbox.Incoming("wh-browser-order", "OrderStatusUpdate", "loc_1", payload, "cid-1")
    body = inbox.receive(db, FrozenClock(datetime.now(UTC)), settings, GHL, incoming)
    assert body["status"] == "unmatched", body
    return str(body["event_id"])


def test_an_unmatched_order_is_replayed_from_the_inbox_after_linking_its_config(
    live: Live, chromium: Browser, db: Database, settings: Settings
) -> None:
    event_id = _unmatched_order(db, settings)
    page = _page(chromium)
    _sign_in(page, live, *OWNER)
    page.goto(f"{live.base_url}/admin")
    expect(page.get_by_role("link", name="1", exact=True)).to_be_visible()  # 1 unmatched

    page.get_by_role("link", name="Webhook inbox").click()
    expect(page.locator("h1")).to_have_text("Webhook inbox")
    page.get_by_label("Status").select_option("unmatched")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    _shot(live, page, "inbox")
    page.locator("tbody tr a").first.click()
    expect(page.locator("h1")).to_have_text("OrderStatusUpdate")
    expect(page.locator("pre.card")).to_contain_text("prod_intro")
    _shot(live, page, "inbox-event")

    # Replayed before the config exists: still unmatched, nothing granted.
    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("processed again")
    expect(page.locator(".props")).to_contain_text("unmatched")

    update_config(db, FrozenClock(datetime.now(UTC)), "pc_sauna", ghl_products=["prod_intro"])
    page.get_by_role("button", name="Replay").click()
    expect(page.locator(".props")).to_contain_text("processed")
    expect(page.get_by_role("button", name="Replay")).to_have_count(0)
    expect(page.locator(".card.stack").first).to_contain_text("ghl:")
    _shot(live, page, "inbox-replayed")

    page.goto(f"{live.base_url}/admin/locations/loc_1/contacts/{live.ada_id}")
    expect(page.locator("body")).to_contain_text("ord_browser")
    assert event_id
