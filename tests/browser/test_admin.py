"""The admin UI in Debian's Chromium against a live `kotally serve`: sign-in, every page as owner
and as viewer, creating a location, a client (token shown once) and a config, and a manual
adjustment that shows in the contact's ledger and through /api/v2.

On SQLite the walk saves docs/screenshots/admin-*.png (1280 px wide; the contact page also at a
phone's 390 px). The data is seeded over the last 25 days, so the overview's chart has bars.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from kotally.ledger.expiry import sweep
from tests.api.test_live_server import running_server
from tests.factories import (
    Ledger,
    make_admin_user,
    make_client,
    make_config,
    make_location,
    update_config,
    update_location,
)

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
OWNER = ("owner@example.com", "owner-password-123")
VIEWER = ("viewer@example.com", "viewer-password-123")
PAGES = {
    "overview": "/admin",
    "locations": "/admin/locations",
    "location": "/admin/locations/loc_1",
    "clients": "/admin/locations/loc_1/clients",
    "configs": "/admin/locations/loc_1/configs",
    "config": "/admin/locations/loc_1/configs/pc_package_1",
    "contacts": "/admin/contacts?location=loc_1",
    "audit": "/admin/audit",
}


@dataclass
class Live:
    base_url: str
    token: str
    ada_id: str
    screenshots: bool


def _seed(db: Database) -> tuple[str, str]:
    """A studio with a month of history, ending a few hours before the real now."""
    clock = FrozenClock(datetime.now(UTC) - timedelta(days=25))
    make_location(db, clock, timezone="Europe/Berlin", cancellation_window_hours=12)
    update_location(db, clock, name="Harbour Yoga")
    make_config(db, clock, credits=10, calendars=["cal_yoga"], ghl_products=["prod_10pack"])
    make_config(db, clock, "pc_sauna", credits=4, type_="membership", expiry_days=7)
    update_config(db, clock, "pc_package_1", name="10-class pack", expiry_days=90)
    update_config(db, clock, "pc_sauna", name="Sauna membership")
    ledger = Ledger(db, clock)
    people = [
        ("ghl_ada", "Ada Lovelace", "ada@example.org"),
        ("ghl_grace", "Grace Hopper", "grace@example.org"),
        ("ghl_alan", "Alan Turing", "alan@example.org"),
        ("ghl_edsger", "Edsger Dijkstra", None),
    ]
    ada = ""
    for day, (ghl, name, email) in enumerate(people * 2):
        clock.advance(timedelta(days=2, hours=3))
        config = "pc_package_1" if day % 3 else "pc_sauna"
        body = ledger.grant(
            ghl_contact_id=ghl,
            name=name,
            email=email,
            product_config_id=config,
            amount_cents=9900 if config == "pc_package_1" else 4500,
            currency="EUR",
            paid_at=clock.now().isoformat(),
        )
        ada = ada or body["contact_id"]
        for n in range(day % 3 + 1):
            clock.advance(timedelta(hours=5))
            ledger.deduct(
                ghl_contact_id=ghl,
                calendar_id="cal_yoga",
                product_config_id=None,
                external_ref=f"booking_{day}_{n}",
                appointment_time=(clock.now() + timedelta(days=1)).isoformat(),
            )
    clock.advance(timedelta(hours=2))
    restored = ledger.restore(
        ghl_contact_id="ghl_edsger", product_config_id="pc_package_1", external_ref="booking_7_1"
    )
    assert restored["reason_code"] == "restored", restored
    clock.advance(timedelta(hours=1))
    assert sweep(db, clock).lots_expired > 0  # the early sauna lots: the chart shows expiries
    make_admin_user(db, clock, *OWNER[:1], "owner", OWNER[1])
    make_admin_user(db, clock, VIEWER[0], "viewer", VIEWER[1])
    return ada, make_client(db, clock, name="Booking site").token


@pytest.fixture
def live(database_url: str, db: Database, tmp_path: Path) -> Iterator[Live]:
    ada, token = _seed(db)
    with running_server(database_url, token, tmp_path, workers=1) as server:
        yield Live(server.base_url, token, ada, database_url.startswith("sqlite"))


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(chromium: Browser, width: int = 1280, height: int = 900) -> Page:
    page = chromium.new_page(viewport={"width": width, "height": height})
    page.on("dialog", lambda dialog: dialog.accept())  # the one confirmation of each action
    return page


def _shot(live: Live, page: Page, name: str) -> None:
    if live.screenshots:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"), full_page=True)


def _sign_in(page: Page, live: Live, email: str, password: str) -> None:
    page.goto(f"{live.base_url}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_with_a_wrong_then_the_right_password(live: Live, chromium: Browser) -> None:
    page = _page(chromium)
    page.goto(f"{live.base_url}/admin/locations")
    expect(page).to_have_url(f"{live.base_url}/admin/login")
    _sign_in(page, live, OWNER[0], "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    assert page.context.cookies() == []
    _shot(live, page, "login-error")
    page.goto(f"{live.base_url}/admin/login")
    _shot(live, page, "login")
    _sign_in(page, live, *OWNER)
    expect(page).to_have_url(f"{live.base_url}/admin")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live.base_url}/admin/login")
    page.goto(f"{live.base_url}/admin")
    expect(page).to_have_url(f"{live.base_url}/admin/login")


def test_every_page_as_owner_and_the_changes_an_owner_makes(live: Live, chromium: Browser) -> None:
    page = _page(chromium)
    _sign_in(page, live, *OWNER)
    for name, path in PAGES.items():
        page.goto(live.base_url + path)
        expect(page.locator("h1")).to_be_visible()
        assert page.locator("form[method=post]").count() >= 1
        _shot(live, page, name)

    # A location, with a bad time zone first.
    page.goto(f"{live.base_url}/admin/locations/new")
    page.get_by_label("Location id").fill("loc_harbour")
    page.get_by_label("Name").fill("Harbour Pilates")
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Create location").click()
    expect(page.locator("#timezone-error")).to_contain_text("not an IANA time zone")
    _shot(live, page, "location-form-error")
    page.get_by_label("Time zone").fill("America/New_York")
    page.get_by_role("button", name="Create location").click()
    expect(page.get_by_role("status")).to_contain_text("Location created")

    # A client: the token is shown once, with a copy button.
    page.goto(f"{live.base_url}/admin/locations/loc_harbour/clients")
    page.get_by_label("Name").fill("Front desk tablet")
    page.get_by_label("check").check()
    page.get_by_label("summary").check()
    page.get_by_role("button", name="Create client").click()
    token = page.locator("#new-token").input_value()
    assert re.fullmatch(r"ktly_[0-9a-f-]{36}_[0-9a-f-]{36}", token)
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    expect(page.get_by_text("shown only once", exact=False)).to_be_visible()
    _shot(live, page, "client-token")
    page.goto(f"{live.base_url}/admin/locations/loc_harbour/clients")
    assert token not in page.content()

    # A config.
    page.goto(f"{live.base_url}/admin/locations/loc_harbour/configs/new")
    page.get_by_label("Config id").fill("pc_mat_5")
    page.get_by_label("Name").fill("5 mat classes")
    page.get_by_label("Credits").fill("5")
    page.get_by_label("Expiry (days)").fill("60")
    page.get_by_label("Linked calendars").fill("cal_mat")
    page.get_by_role("button", name="Create config").click()
    expect(page.get_by_role("status")).to_contain_text("Product config created")
    expect(page.get_by_role("link", name="5 mat classes")).to_be_visible()


def test_an_adjustment_shows_in_the_ledger_and_the_api(live: Live, chromium: Browser) -> None:
    page = _page(chromium)
    _sign_in(page, live, *OWNER)
    page.goto(f"{live.base_url}/admin/contacts?location=loc_1")
    page.get_by_label("Search").fill("ada@")
    page.get_by_role("button", name="Search").click()
    _shot(live, page, "contacts-search")
    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    _shot(live, page, "contact")
    page.get_by_label("Remove credits").check()
    page.locator("#adjust_amount").fill("2")
    page.locator("#adjust_reason").fill("Duplicate booking refunded in cash")
    page.get_by_role("button", name="Apply adjustment").click()
    expect(page.get_by_role("status")).to_contain_text("Adjustment applied")
    row = page.locator("tr", has_text="admin:owner@example.com").first
    expect(row).to_contain_text("adjust")
    expect(row).to_contain_text("\u22122")
    _shot(live, page, "contact-ledger")

    with httpx.Client(base_url=live.base_url, timeout=30) as http:
        body = http.get(
            f"/api/v2/contacts/{live.ada_id}/ledger",
            params={"location_id": "loc_1"},
            headers={"Authorization": f"Bearer {live.token}"},
        ).json()
    assert body["entries"][0]["kind"] == "adjust"
    assert body["entries"][0]["amount"] == -2

    phone = _page(chromium, 390, 844)
    _sign_in(phone, live, *OWNER)
    phone.goto(f"{live.base_url}/admin/locations/loc_1/contacts/{live.ada_id}")
    expect(phone.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(live, phone, "contact-phone")
    phone.goto(f"{live.base_url}/admin")
    _shot(live, phone, "overview-phone")

    page.goto(f"{live.base_url}/admin/audit")
    expect(page.locator("td", has_text="ledger.adjust")).to_be_visible()
    _shot(live, page, "audit")
    page.goto(f"{live.base_url}/admin/users")
    _shot(live, page, "users")


def test_every_page_as_viewer_has_no_forms_that_change_anything(
    live: Live, chromium: Browser
) -> None:
    page = _page(chromium)
    _sign_in(page, live, *VIEWER)
    paths = [*PAGES.values(), f"/admin/locations/loc_1/contacts/{live.ada_id}"]
    for path in paths:
        page.goto(live.base_url + path)
        expect(page.locator("h1")).to_be_visible()
        actions = page.locator("form[method=post]").evaluate_all(
            "forms => forms.map(f => f.getAttribute('action'))"
        )
        assert actions == ["/admin/logout"], (path, actions)
        expect(page.get_by_role("link", name="Users")).to_have_count(0)
    _shot(live, page, "contact-viewer")
    page.goto(f"{live.base_url}/admin/users")
    expect(page.locator("h1")).to_have_text("Not allowed")
