"""The staff embed in Debian's Chromium, framed by a stand-in for GHL on another port.

The parent page answers REQUEST_USER_DATA with a user context encrypted the CryptoJS way, as GHL
does; the test then searches for a contact and reads their balance inside the frame. It saves
docs/screenshots/embed-*.png at a phone-like and a desktop-like width.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, FrameLocator, Page, expect, sync_playwright
from pydantic import SecretStr

from kotally.app import create_app
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.embed.conftest import SHARED_SECRET, user_context
from tests.embed.cryptojs import encrypt_json
from tests.factories import studio, update_config, update_location

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
START_TIMEOUT_SECONDS = 20.0


def _listening_socket() -> socket.socket:
    """A socket bound to a port the kernel picked and kept: no other test can take it between
    choosing the port and serving on it (two free ports asked for apart could be one)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Stage:
    kotally_url: str
    parent_url: str


def _parent_page(embed_url: str, kotally_origin: str, payload: str) -> bytes:
    """GHL's part: frame the custom page and answer its REQUEST_USER_DATA."""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>GHL stand-in</title>
<style>body{{margin:0;background:#e9ecf2}}iframe{{display:block;width:100%;height:100vh;border:0}}
</style></head><body>
<iframe id="custom-page" src="{embed_url}" title="Kotally"></iframe>
<script>
const payload = {json.dumps(payload)};
window.asked = 0;
window.addEventListener("message", (event) => {{
  if (event.origin !== {json.dumps(kotally_origin)}) return;
  if (event.data && event.data.message === "REQUEST_USER_DATA") {{
    window.asked += 1;
    event.source.postMessage({{ message: "REQUEST_USER_DATA_RESPONSE", payload }}, "*");
  }}
}});
</script></body></html>""".encode()


def _serve_parent(page: list[bytes]) -> ThreadingHTTPServer:
    """The GHL stand-in on a port of its own choosing; it serves page[0], set once known."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page[0]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


LOCATION_ZONE = "Asia/Tokyo"
BROWSER_ZONE = "America/New_York"  # where the browser runs: not the studio's zone


def _seed(db: Database, clock: FrozenClock) -> None:
    ledger = studio(db, clock)
    update_location(db, clock, name="North Studio", timezone=LOCATION_ZONE)
    update_config(db, clock, "pc_package_1", name="10-class pack", expiry_days=90)
    update_config(db, clock, "pc_other", name="Sauna sessions", type_="membership")
    ada = {"ghl_contact_id": "ghl_ada", "name": "Ada Lovelace", "email": "ada@example.org"}
    ledger.grant(**ada)
    ledger.grant(**ada, product_config_id="pc_other")
    soon = clock.now() + timedelta(days=1, hours=9)
    for i in range(2):
        ledger.deduct(
            ghl_contact_id="ghl_ada",
            external_ref=f"booking_{i + 1}",
            appointment_time=(soon + timedelta(days=2 * i)).isoformat(),
        )
    ledger.grant(external_contact_id="ext_bo", name="Bo Diddley", email="bo@example.org")
    ledger.grant(ghl_contact_id="ghl_cy", name="Cy Young", email="cy@example.net")


@pytest.fixture
def stage(settings: Settings, db: Database, clock: FrozenClock) -> Iterator[Stage]:
    _seed(db, clock)
    page: list[bytes] = [b""]
    parent = _serve_parent(page)
    parent_port = parent.server_address[1]
    kotally_socket = _listening_socket()
    kotally_port = kotally_socket.getsockname()[1]
    kotally_origin = f"http://127.0.0.1:{kotally_port}"
    # Another origin than Kotally's (a port apart), as GHL's app is.
    parent_origin = f"http://localhost:{parent_port}"
    app_settings = settings.model_copy(
        update={
            "expire_sweep_interval_seconds": 0,
            "ghl_app_shared_secret": SecretStr(SHARED_SECRET),
            "embed_frame_ancestors": parent_origin,
        }
    )
    app = create_app(app_settings, clock=clock, db=db)
    config = uvicorn.Config(app, host="127.0.0.1", port=kotally_port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, args=([kotally_socket],), daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        assert thread.is_alive(), "Kotally's server stopped while starting"
        assert time.monotonic() < deadline, "Kotally did not start"
        time.sleep(0.05)
    payload = encrypt_json(user_context(), SHARED_SECRET)
    page[0] = _parent_page(f"{kotally_origin}/embed", kotally_origin, payload)
    try:
        yield Stage(kotally_origin, f"{parent_origin}/")
    finally:
        parent.shutdown()
        parent.server_close()
        server.should_exit = True
        thread.join(timeout=10)
        kotally_socket.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / name
    partial = target.with_suffix(f".{os.getpid()}.partial.png")
    page.screenshot(path=str(partial), full_page=True)
    os.replace(partial, target)  # two workers may write the same file: never a torn one


def _open_ada(page: Page, frame: FrameLocator, width: int) -> None:
    expect(frame.get_by_text("Newest contacts")).to_be_visible()
    expect(frame.locator(".result")).to_have_count(3)
    frame.get_by_label("Search contacts").fill("example.org")
    results = frame.locator(".result")
    expect(results).to_have_count(2)
    _screenshot(page, f"embed-{width}-search.png")
    frame.get_by_label("Search contacts").fill("lovelace")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Ada Lovelace")
    results.first.click()
    expect(frame.locator(".contact-name")).to_have_text("Ada Lovelace")


@pytest.mark.parametrize(("width", "height"), [(1000, 820), (400, 1100)])
def test_handshake_search_and_balance(
    browser: Browser, stage: Stage, width: int, height: int
) -> None:
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(stage.parent_url)
    frame = page.frame_locator("#custom-page")
    _open_ada(page, frame, width)
    # 10 + 5 granted, 2 booked: 8 of the class pack, 5 sauna sessions, 13 in all.
    expect(frame.locator(".total-number")).to_have_text("13")
    cards = frame.locator(".balance")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text("10-class pack")
    expect(cards.nth(0).locator(".balance-number")).to_have_text("8")
    expect(cards.nth(1)).to_contain_text("Sauna sessions")
    expect(cards.nth(1).locator(".balance-number")).to_have_text("5")
    expect(frame.locator(".list li")).to_have_count(2)
    expect(frame.locator(".table tbody tr")).to_have_count(4)
    assert page.evaluate("window.asked") == 1
    page.wait_for_timeout(150)  # let the last paint settle before the picture
    _screenshot(page, f"embed-{width}.png")
    if width < 760:
        frame.get_by_role("button", name="← Back to results").click()
        expect(frame.get_by_label("Search contacts")).to_be_visible()
    page.close()


def test_times_in_the_location_time_zone(
    browser: Browser, stage: Stage, clock: FrozenClock
) -> None:
    page = browser.new_page(viewport={"width": 1000, "height": 820}, timezone_id=BROWSER_ZONE)
    page.goto(stage.parent_url)
    frame = page.frame_locator("#custom-page")
    expect(frame.locator(".who-name")).to_have_text("North Studio")
    expect(frame.locator(".who-zone")).to_have_text("Times in Asia/Tokyo")
    _open_ada(page, frame, 1000)
    first = (clock.now() + timedelta(days=1, hours=9)).isoformat()  # booking_1, as seeded
    shown = {
        zone: page.evaluate(
            """([iso, timeZone]) => new Intl.DateTimeFormat(undefined,
                 { dateStyle: "medium", timeStyle: "short", timeZone }).format(new Date(iso))""",
            [first, zone],
        )
        for zone in (LOCATION_ZONE, BROWSER_ZONE)
    }
    assert shown[LOCATION_ZONE] != shown[BROWSER_ZONE]
    expect(frame.locator(".list li").first).to_contain_text(shown[LOCATION_ZONE])
    page.close()


def test_no_results_state(browser: Browser, stage: Stage) -> None:
    page = browser.new_page(viewport={"width": 400, "height": 700})
    page.goto(stage.parent_url)
    frame = page.frame_locator("#custom-page")
    expect(frame.get_by_text("Newest contacts")).to_be_visible()
    frame.get_by_label("Search contacts").fill("nobody-like-this")
    expect(frame.get_by_text("No contacts match “nobody-like-this”.", exact=False)).to_be_visible()
    page.close()


def test_opened_outside_ghl_says_so(browser: Browser, stage: Stage) -> None:
    page = browser.new_page(viewport={"width": 800, "height": 600})
    page.goto(f"{stage.kotally_url}/embed")
    expect(page.get_by_role("heading", name="Open this page inside HighLevel")).to_be_visible()
    expect(page.get_by_label("Search contacts")).to_be_hidden()
    page.close()


def test_an_expired_session_signs_in_again(
    browser: Browser, stage: Stage, clock: FrozenClock
) -> None:
    page = browser.new_page(viewport={"width": 800, "height": 700})
    page.goto(stage.parent_url)
    frame = page.frame_locator("#custom-page")
    expect(frame.get_by_text("Newest contacts")).to_be_visible()
    assert page.evaluate("window.asked") == 1
    clock.advance(timedelta(minutes=16))  # the token is refused from here on
    frame.get_by_label("Search contacts").fill("young")
    expect(frame.locator(".result")).to_have_count(1)
    expect(frame.locator(".result").first).to_contain_text("Cy Young")
    assert page.evaluate("window.asked") == 2  # one new handshake, then the same read again
    page.close()
