"""The admin UI through HTTP: the app on a migrated database, users of each role, and a client
that signs in and sends forms with the session's CSRF token."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from starlette.testclient import TestClient

from kotally.admin import passwords
from kotally.app import create_app
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.factories import Ledger, make_admin_user, studio

BASE_URL = "http://kotally.test"
PASSWORDS = {
    "owner@example.com": "owner-password-123",
    "admin@example.com": "admin-password-123",
    "viewer@example.com": "viewer-password-123",
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class AdminClient:
    """A browser stand-in: keeps the session cookie, finds the CSRF token on a page."""

    def __init__(self, http: TestClient) -> None:
        self.http = http
        self.csrf = ""

    def sign_in(self, email: str, password: str | None = None) -> httpx.Response:
        response = self.http.post(
            "/admin/login",
            data={"email": email, "password": password or PASSWORDS[email]},
            follow_redirects=False,
        )
        if response.status_code == 303:
            self.csrf = self.token_from(self.get("/admin"))
        return response

    @staticmethod
    def token_from(response: httpx.Response) -> str:
        found = _CSRF.search(response.text)
        assert found, response.text[:500]
        return found.group(1)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, follow_redirects=False, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        body = {"csrf_token": self.csrf, **(data or {})}
        return self.http.post(path, data=body, follow_redirects=False, **kw)


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Argon2id at its lowest cost: these tests check who may do what, not the hash's strength
    # (test_cli checks the stored hash is Argon2id). Saves ~0.1 s per hash and per sign-in.
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", cheap)


@pytest.fixture
def admin_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"expire_sweep_interval_seconds": 0})


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    """loc_1 with pc_package_1 and pc_other, and one user of each role."""
    world = studio(db, clock)
    for email, password in PASSWORDS.items():
        make_admin_user(db, clock, email, email.split("@")[0], password)
    return world


@pytest.fixture
def admin_app(
    admin_settings: Settings, clock: FrozenClock, db: Database, ledger: Ledger
) -> FastAPI:
    return create_app(admin_settings, clock=clock, db=db)


BrowserFactory = Callable[[], AdminClient]


@pytest.fixture
def new_browser(admin_app: FastAPI) -> Iterator[BrowserFactory]:
    """Browsers of their own (cookie jars apart), closed at the end of the test."""
    opened: list[TestClient] = []

    def make() -> AdminClient:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            http = TestClient(admin_app, base_url=BASE_URL)
        opened.append(http)
        return AdminClient(http)

    yield make
    for http in opened:
        http.close()


@pytest.fixture
def browser(new_browser: BrowserFactory) -> AdminClient:
    return new_browser()


@pytest.fixture
def owner(browser: AdminClient) -> AdminClient:
    assert browser.sign_in("owner@example.com").status_code == 303
    return browser


@pytest.fixture
def viewer(browser: AdminClient) -> AdminClient:
    assert browser.sign_in("viewer@example.com").status_code == 303
    return browser
