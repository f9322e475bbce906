"""Who may see and change what: signed-out browsers, viewers, CSRF, sessions, sign-in limits."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select

from kotally.admin.endpoints import ROUTERS
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.models import AdminSession, AuditEntry, Location
from kotally.kit.clock import FrozenClock
from tests.admin.conftest import PASSWORDS, AdminClient, BrowserFactory
from tests.factories import Ledger, rows

PATH_VALUES = {
    "location_id": "loc_1",
    "config_id": "pc_package_1",
    "client_id": str(uuid.uuid4()),
    "contact_id": str(uuid.uuid4()),
    "email": "owner@example.com",
    "event_id": str(uuid.uuid4()),
}
PUBLIC = {"/admin/login"}


def admin_routes(app: FastAPI, method: str) -> list[str]:
    """Every admin route (the app's routers are nested, so read the admin's own)."""
    paths = []
    for route in (r for router in ROUTERS for r in router.routes):
        assert isinstance(route, APIRoute)
        if method in route.methods and route.path not in PUBLIC:
            paths.append(re.sub(r"{(\w+)}", lambda m: PATH_VALUES[m.group(1)], route.path))
    return sorted(paths)


def test_the_admin_has_the_routes_the_tests_walk(admin_app: FastAPI) -> None:
    gets = admin_routes(admin_app, "GET")
    posts = admin_routes(admin_app, "POST")
    assert len(gets) >= 12, gets
    assert len(posts) >= 14, posts


def test_signed_out_every_page_redirects_to_sign_in_without_data(
    admin_app: FastAPI, browser: AdminClient, ledger: Ledger
) -> None:
    ledger.grant(name="Secret Person", email="secret@example.com")
    for method in ("GET", "POST"):
        for path in admin_routes(admin_app, method):
            response = browser.http.request(method, path, follow_redirects=False)
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"] == "/admin/login"
            assert "Secret" not in response.text
            assert "loc_1" not in response.text


def test_a_viewer_gets_403_on_every_form_and_nothing_changes(
    admin_app: FastAPI, viewer: AdminClient, db: Database
) -> None:
    before = len(rows(db, AuditEntry))
    for path in admin_routes(admin_app, "POST"):
        if path == "/admin/logout":
            continue
        data = {"name": "x", "location_id": "loc_new", "timezone": "UTC", "role": "owner"}
        response = viewer.post(path, data)
        assert response.status_code == 403, (path, response.status_code)
    assert len(rows(db, AuditEntry)) == before
    assert [loc.id for loc in rows(db, Location)] == ["loc_1"]


def test_a_viewers_pages_have_no_forms_that_change_anything(viewer: AdminClient) -> None:
    for path in (
        "/admin",
        "/admin/locations",
        "/admin/locations/loc_1",
        "/admin/contacts",
        "/admin/locations/loc_1/clients",
        "/admin/locations/loc_1/configs",
        "/admin/locations/loc_1/configs/pc_package_1",
        "/admin/audit",
        "/admin/webhooks",
    ):
        page = viewer.get(path)
        assert page.status_code == 200, path
        actions = re.findall(r'<form method="post" action="([^"]+)"', page.text)
        assert actions == ["/admin/logout"], (path, actions)


@pytest.mark.parametrize("email", ["admin@example.com", "viewer@example.com"])
def test_only_owners_see_and_change_users(browser: AdminClient, email: str, db: Database) -> None:
    browser.sign_in(email)
    assert browser.get("/admin/users").status_code == 403
    response = browser.post(
        "/admin/users", {"email": "new@example.com", "role": "owner", "password": "x" * 12}
    )
    assert response.status_code == 403
    assert "/admin/users" not in browser.get("/admin").text


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused(owner: AdminClient) -> None:
    data = {"location_id": "loc_2", "name": "Two", "timezone": "UTC"}
    without = owner.http.post("/admin/locations", data=data, follow_redirects=False)
    wrong = owner.post("/admin/locations", {**data, "csrf_token": "not-the-token"})
    assert without.status_code == 403
    assert wrong.status_code == 403
    assert "security token" in wrong.text
    assert owner.get("/admin/locations/loc_2").status_code == 404


def test_the_csrf_token_may_come_as_a_header(owner: AdminClient) -> None:
    response = owner.http.post(
        "/admin/locations",
        data={"location_id": "loc_2", "name": "Two", "timezone": "UTC"},
        headers={"X-CSRF-Token": owner.csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303


def test_another_sessions_csrf_token_is_refused(new_browser: BrowserFactory, db: Database) -> None:
    first, second = new_browser(), new_browser()
    first.sign_in("owner@example.com")
    second.sign_in("admin@example.com")
    response = first.post(
        "/admin/locations", {"location_id": "loc_2", "name": "Two", "csrf_token": second.csrf}
    )
    assert response.status_code == 403


def test_a_wrong_password_shows_an_error_and_sets_no_session(
    browser: AdminClient, db: Database
) -> None:
    response = browser.sign_in("owner@example.com", "wrong-password-123")
    assert response.status_code == 401
    assert "do not match" in response.text
    assert not browser.http.cookies.get("kotally_admin")
    assert rows(db, AdminSession) == []
    assert browser.get("/admin").status_code == 303


def test_an_unknown_account_gets_the_same_answer(browser: AdminClient) -> None:
    response = browser.sign_in("nobody@example.com", "whatever-password")
    assert response.status_code == 401
    assert "do not match" in response.text


def test_sign_in_sets_a_new_http_only_lax_cookie_and_fixation_fails(
    browser: AdminClient, db: Database
) -> None:
    planted = "attacker-chosen-session-token"
    browser.http.cookies.set("kotally_admin", planted, domain="kotally.test", path="/admin")
    response = browser.sign_in("owner@example.com")
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # development: plain http
    token = browser.http.cookies.get("kotally_admin")
    assert token
    assert token != planted
    browser.http.cookies.clear()
    browser.http.cookies.set("kotally_admin", planted, domain="kotally.test", path="/admin")
    assert browser.get("/admin").status_code == 303


def test_signing_in_again_ends_the_previous_session(browser: AdminClient) -> None:
    browser.sign_in("owner@example.com")
    old = browser.http.cookies.get("kotally_admin")
    browser.sign_in("owner@example.com")
    new = browser.http.cookies.get("kotally_admin")
    assert old != new
    browser.http.cookies.clear()
    browser.http.cookies.set("kotally_admin", str(old), domain="kotally.test", path="/admin")
    assert browser.get("/admin").status_code == 303


def test_sign_out_ends_the_session_row(owner: AdminClient, db: Database) -> None:
    token = owner.http.cookies.get("kotally_admin")
    response = owner.post("/admin/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    [row] = rows(db, AdminSession)
    assert row.ended_at is not None
    owner.http.cookies.set("kotally_admin", str(token), domain="kotally.test", path="/admin")
    assert owner.get("/admin").status_code == 303


def test_sign_out_needs_the_csrf_token(owner: AdminClient) -> None:
    response = owner.http.post("/admin/logout", follow_redirects=False)
    assert response.status_code == 403
    assert owner.get("/admin").status_code == 200


def test_a_session_ends_after_the_idle_time(
    owner: AdminClient, clock: FrozenClock, admin_settings: Settings
) -> None:
    clock.advance(timedelta(seconds=admin_settings.admin_session_idle_seconds - 60))
    assert owner.get("/admin").status_code == 200  # activity extends it
    clock.advance(timedelta(seconds=admin_settings.admin_session_idle_seconds - 60))
    assert owner.get("/admin").status_code == 200
    clock.advance(timedelta(seconds=admin_settings.admin_session_idle_seconds + 1))
    assert owner.get("/admin").status_code == 303


def test_a_session_ends_at_its_lifetime_however_active(
    owner: AdminClient, clock: FrozenClock, admin_settings: Settings
) -> None:
    step = timedelta(seconds=admin_settings.admin_session_idle_seconds // 2)
    elapsed = timedelta()
    while elapsed < timedelta(seconds=admin_settings.admin_session_lifetime_seconds - 1):
        assert owner.get("/admin").status_code == 200
        clock.advance(step)
        elapsed += step
    assert owner.get("/admin").status_code == 303


def test_a_deactivated_users_session_stops_working(
    new_browser: BrowserFactory, db: Database
) -> None:
    owner, admin = new_browser(), new_browser()
    owner.sign_in("owner@example.com")
    admin.sign_in("admin@example.com")
    response = owner.post("/admin/users/admin@example.com/deactivate")
    assert response.status_code == 303
    assert admin.get("/admin").status_code == 303
    assert admin.sign_in("admin@example.com").status_code == 401


def test_failed_sign_ins_are_limited_per_account(
    browser: AdminClient, clock: FrozenClock, admin_settings: Settings
) -> None:
    for _ in range(admin_settings.admin_sign_in_account_failures_max):
        assert browser.sign_in("owner@example.com", "wrong-password-1").status_code == 401
    limited = browser.sign_in("owner@example.com")  # even the right password
    assert limited.status_code == 429
    assert "Too many failed sign-ins" in limited.text
    assert browser.sign_in("admin@example.com").status_code == 303  # other accounts are fine
    clock.advance(timedelta(seconds=admin_settings.admin_sign_in_window_seconds + 1))
    assert browser.sign_in("owner@example.com").status_code == 303


def test_failed_sign_ins_are_limited_per_address(
    browser: AdminClient, admin_settings: Settings
) -> None:
    for i in range(admin_settings.admin_sign_in_address_failures_max):
        assert browser.sign_in(f"guess{i}@example.com", "wrong-password-1").status_code == 401
    assert browser.sign_in("owner@example.com").status_code == 429


def test_a_good_sign_in_clears_the_accounts_failures(
    browser: AdminClient, admin_settings: Settings
) -> None:
    for _ in range(admin_settings.admin_sign_in_account_failures_max - 1):
        browser.sign_in("viewer@example.com", "wrong-password-1")
    assert browser.sign_in("viewer@example.com").status_code == 303
    for _ in range(admin_settings.admin_sign_in_account_failures_max - 1):
        assert browser.sign_in("viewer@example.com", "wrong-password-1").status_code == 401
    assert browser.sign_in("viewer@example.com").status_code == 303


def test_admin_pages_cannot_be_framed_and_carry_a_csp(owner: AdminClient) -> None:
    for path in ("/admin", "/admin/login"):
        response = owner.get(path)
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self'" in response.headers["content-security-policy"]


def test_the_cookie_is_secure_in_production(
    admin_settings: Settings, clock: FrozenClock, db: Database, ledger: Ledger
) -> None:
    from starlette.testclient import TestClient

    from kotally.app import create_app

    production = admin_settings.model_copy(update={"env": "production"})
    with TestClient(
        create_app(production, clock=clock, db=db), base_url="https://kotally.test"
    ) as http:
        response = http.post(
            "/admin/login",
            data={"email": "owner@example.com", "password": PASSWORDS["owner@example.com"]},
            follow_redirects=False,
        )
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


def test_sign_ins_are_stored_hashed(owner: AdminClient, db: Database) -> None:
    token = owner.http.cookies.get("kotally_admin")
    [row] = rows(db, AdminSession)
    assert token
    assert token not in row.id
    with db.unit_of_work(write=False) as session:
        assert session.execute(select(AdminSession).where(AdminSession.id == token)).first() is None


def test_a_form_that_cannot_be_read_is_400_not_500(owner: AdminClient) -> None:
    fields = {f"f{i}": "x" for i in range(300)}
    response = owner.http.post(
        "/admin/locations",
        files={k: (None, v) for k, v in fields.items()},
        headers={"X-CSRF-Token": owner.csrf},
        follow_redirects=False,
    )
    assert response.status_code == 400
    assert "could not be read" in response.text
