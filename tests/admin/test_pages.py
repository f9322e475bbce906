"""The admin pages do their one job each: create, edit, issue, adjust; bad input is shown again."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from kotally.db.engine import Database
from kotally.db.models import (
    ApiClient,
    AuditEntry,
    Entitlement,
    LedgerEntry,
    Location,
    ProductConfig,
)
from tests.admin.conftest import AdminClient
from tests.factories import Ledger, make_location, rows

TOKEN = re.compile(r'id="new-token"[^>]*value="(ktly_[^"]+)"')


def _audit(db: Database, action: str) -> list[AuditEntry]:
    return rows(db, AuditEntry, AuditEntry.action == action)


def test_create_a_location(owner: AdminClient, db: Database) -> None:
    response = owner.post(
        "/admin/locations",
        {
            "location_id": "loc_2",
            "name": "Second Studio",
            "timezone": "Europe/Berlin",
            "billing_status": "trialing",
            "cancellation_window_hours": "12",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/locations/loc_2?notice=created"
    [loc] = rows(db, Location, Location.id == "loc_2")
    assert (loc.timezone, loc.billing_status, loc.cancellation_window_hours) == (
        "Europe/Berlin",
        "trialing",
        12,
    )
    [entry] = _audit(db, "location.create")
    assert entry.actor == "admin:owner@example.com"
    assert entry.after is not None
    assert entry.after["timezone"] == "Europe/Berlin"
    page = owner.get("/admin/locations/loc_2")
    assert "/webhooks/ghl" in page.text
    assert "/webhooks/stripe/loc_2" in page.text


def test_a_bad_location_form_is_shown_again_with_messages_by_the_fields(
    owner: AdminClient, db: Database
) -> None:
    response = owner.post(
        "/admin/locations",
        {
            "location_id": "has space",
            "name": "",
            "timezone": "Mars/Olympus",
            "cancellation_window_hours": "-3",
        },
    )
    assert response.status_code == 422
    for field, text in (
        ("location_id", "no spaces"),
        ("name", "Name is required"),
        ("timezone", "not an IANA time zone"),
        ("cancellation_window_hours", "from 0"),
    ):
        assert re.search(f'id="{field}-error">[^<]*{text}', response.text), field
    assert 'value="Mars/Olympus"' in response.text
    assert [loc.id for loc in rows(db, Location)] == ["loc_1"]


def test_a_duplicate_location_id_is_refused_by_the_field(owner: AdminClient) -> None:
    response = owner.post("/admin/locations", {"location_id": "loc_1", "name": "Again"})
    assert response.status_code == 422
    assert re.search(r'id="location_id-error">[^<]*already exists', response.text)


def test_edit_a_location(owner: AdminClient, db: Database) -> None:
    response = owner.post(
        "/admin/locations/loc_1",
        {
            "name": "Renamed",
            "timezone": "America/New_York",
            "billing_status": "suspended",
            "cancellation_window_hours": "",
        },
    )
    assert response.status_code == 303
    [loc] = rows(db, Location)
    assert (loc.name, loc.timezone, loc.billing_status) == (
        "Renamed",
        "America/New_York",
        "suspended",
    )
    [entry] = _audit(db, "location.update")
    assert entry.before is not None
    assert entry.before["billing_status"] == "active"


def test_a_client_token_is_shown_once_and_works(owner: AdminClient, db: Database) -> None:
    response = owner.post(
        "/admin/locations/loc_1/clients", {"name": "Booking site", "scopes": ["check", "summary"]}
    )
    assert response.status_code == 200
    assert "shown only once" in response.text
    found = TOKEN.search(response.text)
    assert found
    token = found.group(1)
    assert token not in owner.get("/admin/locations/loc_1/clients").text
    [client] = rows(db, ApiClient)
    assert client.scopes == "check,summary"
    assert token not in client.token_hash
    api = owner.http.post(
        "/api/v2/entitlements/check-eligibility",
        json={"location_id": "loc_1", "ghl_contact_id": "x", "product_config_id": "pc_package_1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert api.status_code == 200


def test_a_client_needs_a_scope(owner: AdminClient, db: Database) -> None:
    response = owner.post("/admin/locations/loc_1/clients", {"name": "No scopes"})
    assert response.status_code == 422
    assert "Choose at least one scope" in response.text
    assert rows(db, ApiClient) == []


def test_rotate_and_deactivate_a_client(owner: AdminClient, db: Database) -> None:
    created = owner.post("/admin/locations/loc_1/clients", {"name": "c", "scopes": "check"})
    first = TOKEN.search(created.text)
    [client] = rows(db, ApiClient)
    rotated = owner.post(f"/admin/locations/loc_1/clients/{client.id}/rotate")
    second = TOKEN.search(rotated.text)
    assert first
    assert second
    assert first.group(1) != second.group(1)
    assert "no longer works" in rotated.text
    deactivated = owner.post(f"/admin/locations/loc_1/clients/{client.id}/deactivate")
    assert deactivated.status_code == 303
    [client] = rows(db, ApiClient)
    assert client.active is False
    assert [e.action for e in rows(db, AuditEntry) if e.entity == "api_client"] == [
        "api_client.create",
        "api_client.rotate",
        "api_client.deactivate",
    ]


def test_another_locations_client_cannot_be_touched_from_this_location(
    owner: AdminClient, db: Database, clock: object
) -> None:
    owner.post("/admin/locations", {"location_id": "loc_2", "name": "Two"})
    owner.post("/admin/locations/loc_2/clients", {"name": "theirs", "scopes": "check"})
    [client] = rows(db, ApiClient)
    response = owner.post(f"/admin/locations/loc_1/clients/{client.id}/deactivate")
    assert response.status_code == 422
    assert rows(db, ApiClient)[0].active is True


def test_create_edit_and_deactivate_a_config(owner: AdminClient, db: Database) -> None:
    created = owner.post(
        "/admin/locations/loc_1/configs",
        {
            "config_id": "pc_pack_5",
            "name": "5 classes",
            "type": "package",
            "credits": "5",
            "expiry_days": "90",
            "calendars": "cal_a, cal_b",
            "ghl_products": "prod_1",
            "stripe_prices": "price_1\nprice_2",
        },
    )
    assert created.status_code == 303
    edited = owner.post(
        "/admin/locations/loc_1/configs/pc_pack_5",
        {
            "name": "Five classes",
            "type": "package",
            "credits": "6",
            "expiry_days": "",
            "calendars": "cal_a",
            "ghl_products": "",
            "stripe_prices": "price_1",
        },
    )
    assert edited.status_code == 303
    with db.unit_of_work(write=False) as session:
        config = session.execute(
            select(ProductConfig).where(ProductConfig.config_id == "pc_pack_5")
        ).scalar_one()
        assert (config.name, config.credits, config.expiry_days) == ("Five classes", 6, None)
        assert config.linked("calendar") == ["cal_a"]
        assert config.linked("ghl_product") == []
    assert owner.post("/admin/locations/loc_1/configs/pc_pack_5/deactivate").status_code == 303
    [config] = rows(db, ProductConfig, ProductConfig.config_id == "pc_pack_5")
    assert config.active is False
    actions = [e.action for e in rows(db, AuditEntry) if e.entity == "product_config"]
    assert actions == [
        "product_config.create",
        "product_config.update",
        "product_config.deactivate",
    ]


def test_a_bad_config_form_names_each_field(owner: AdminClient, db: Database) -> None:
    response = owner.post(
        "/admin/locations/loc_1/configs",
        {
            "config_id": "pc_package_1",
            "name": "Dup",
            "type": "bundle",
            "credits": "0",
            "expiry_days": "x",
        },
    )
    assert response.status_code == 422
    assert re.search(r'id="type-error">', response.text)
    assert re.search(r'id="credits-error">[^<]*from 1', response.text)
    assert re.search(r'id="expiry_days-error">[^<]*whole number', response.text)
    assert len(rows(db, ProductConfig)) == 2


def test_search_finds_a_contact_by_name_email_or_id_within_the_location(
    owner: AdminClient, ledger: Ledger, db: Database, clock: object
) -> None:
    grant = ledger.grant(name="Ada Lovelace", email="ada@example.com", ghl_contact_id="ghl_ada")
    ledger.grant(name="Grace Hopper", ghl_contact_id="ghl_grace")
    for query in ("ada", "ADA@EXAMPLE", "ghl_ada", grant["contact_id"]):
        page = owner.get("/admin/contacts", params={"location": "loc_1", "q": query})
        assert "Ada Lovelace" in page.text, query
        assert "Grace Hopper" not in page.text, query
    assert "No contact matches" in owner.get("/admin/contacts", params={"q": "nobody"}).text


def test_another_locations_contact_is_not_found(
    owner: AdminClient, ledger: Ledger, db: Database, clock: object
) -> None:
    grant = ledger.grant(name="Ada Lovelace")
    owner.post("/admin/locations", {"location_id": "loc_2", "name": "Two"})
    page = owner.get(f"/admin/locations/loc_2/contacts/{grant['contact_id']}")
    assert page.status_code == 404
    assert "Ada" not in page.text
    search = owner.get("/admin/contacts", params={"location": "loc_2", "q": "Ada"})
    assert "Ada Lovelace" not in search.text


def test_the_contact_page_shows_balances_lots_and_history(
    owner: AdminClient, ledger: Ledger
) -> None:
    grant = ledger.grant(name="Ada Lovelace", amount_cents=9900, currency="USD")
    ledger.deduct(external_ref="booking_1", calendar_id="cal_1", product_config_id=None)
    base = f"/admin/locations/loc_1/contacts/{grant['contact_id']}"
    page = owner.get(base)
    assert re.search(r'class="balance-value">9<', page.text)
    assert "pc_package_1" in page.text
    ledger_tab = owner.get(base, params={"tab": "ledger"})
    assert "deduct" in ledger_tab.text
    assert "grant" in ledger_tab.text
    payments = owner.get(base, params={"tab": "payments"})
    assert "99.00 USD" in payments.text
    appointments = owner.get(base, params={"tab": "appointments"})
    assert "booking_1" in appointments.text


def _adjust(owner: AdminClient, contact_id: str, lot_id: str, **fields: str) -> object:
    data = {
        "request_id": str(uuid.uuid4()),
        "adjust_entitlement_id": lot_id,
        "adjust_direction": "add",
        "adjust_amount": "3",
        "adjust_reason": "goodwill after a cancelled class",
        **fields,
    }
    return owner.post(f"/admin/locations/loc_1/contacts/{contact_id}/adjust", data)


def test_an_adjustment_is_an_adjust_entry_by_the_admin_and_shows_in_the_api(
    owner: AdminClient, ledger: Ledger, db: Database
) -> None:
    grant = ledger.grant()
    response = _adjust(owner, grant["contact_id"], grant["entitlement_id"])
    assert response.status_code == 303  # type: ignore[attr-defined]
    [entry] = rows(db, LedgerEntry, LedgerEntry.kind == "adjust")
    assert (entry.amount, entry.balance_after, entry.actor) == (3, 13, "admin:owner@example.com")
    [audit] = _audit(db, "ledger.adjust")
    assert audit.after is not None
    assert audit.after["reason"] == "goodwill after a cancelled class"
    page = owner.get(f"/admin/locations/loc_1/contacts/{grant['contact_id']}?tab=ledger")
    assert "admin:owner@example.com" in page.text
    assert ledger.check()["balance_after"] == 12  # 13 available, check of 1


def test_the_same_adjust_form_sent_twice_applies_once(
    owner: AdminClient, ledger: Ledger, db: Database
) -> None:
    grant = ledger.grant()
    request_id = str(uuid.uuid4())
    for _ in range(2):
        response = _adjust(
            owner, grant["contact_id"], grant["entitlement_id"], request_id=request_id
        )
        assert response.status_code == 303  # type: ignore[attr-defined]
    assert len(rows(db, LedgerEntry, LedgerEntry.kind == "adjust")) == 1
    assert len(_audit(db, "ledger.adjust")) == 1


def test_removing_more_than_a_lot_holds_is_refused_not_clamped(
    owner: AdminClient, ledger: Ledger, db: Database
) -> None:
    grant = ledger.grant()
    response = _adjust(
        owner,
        grant["contact_id"],
        grant["entitlement_id"],
        adjust_direction="remove",
        adjust_amount="11",
    )
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert re.search(r'id="adjust_amount-error">[^<]*holds only 10', response.text)  # type: ignore[attr-defined]
    assert rows(db, LedgerEntry, LedgerEntry.kind == "adjust") == []
    assert rows(db, Entitlement)[0].credits_remaining == 10


def test_an_adjustment_needs_a_reason(owner: AdminClient, ledger: Ledger, db: Database) -> None:
    grant = ledger.grant()
    response = _adjust(owner, grant["contact_id"], grant["entitlement_id"], adjust_reason=" ")
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert 'id="adjust_reason-error"' in response.text  # type: ignore[attr-defined]
    assert rows(db, LedgerEntry, LedgerEntry.kind == "adjust") == []


def test_a_manual_grant_goes_through_the_grant_engine(
    owner: AdminClient, ledger: Ledger, db: Database
) -> None:
    grant = ledger.grant()
    data = {
        "request_id": str(uuid.uuid4()),
        "grant_product_config_id": "pc_other",
        "grant_reason": "complimentary pack",
    }
    path = f"/admin/locations/loc_1/contacts/{grant['contact_id']}/grant"
    assert owner.post(path, data).status_code == 303
    assert owner.post(path, data).status_code == 303  # the same form again: once
    entries = rows(db, LedgerEntry, LedgerEntry.kind == "grant")
    assert len(entries) == 2
    assert entries[-1].actor == "admin:owner@example.com"
    payments = owner.get(
        f"/admin/locations/loc_1/contacts/{grant['contact_id']}", params={"tab": "payments"}
    )
    assert "manual" in payments.text
    assert len(_audit(db, "ledger.grant")) == 1


def test_the_overview_counts_and_charts_each_location(
    owner: AdminClient, ledger: Ledger, db: Database, clock: object
) -> None:
    ledger.grant(name="Ada")
    ledger.deduct()
    page = owner.get("/admin")
    assert re.search(
        r'<td class="num"><a [^>]*>1</a></td>\s*<td class="num">1</td>\s*'
        r'<td class="num">9</td>',
        page.text,
    )
    assert re.search(r'metric-label">Granted</span> <span class="metric-value">10<', page.text)
    assert re.search(r'metric-label">Used</span> <span class="metric-value">1<', page.text)
    assert "No failed or unmatched webhook events" in page.text


def test_owners_create_users_and_the_last_owner_stays(owner: AdminClient, db: Database) -> None:
    created = owner.post(
        "/admin/users", {"email": "New@Example.com", "role": "admin", "password": "a-long-password"}
    )
    assert created.status_code == 303
    short = owner.post(
        "/admin/users", {"email": "b@example.com", "role": "admin", "password": "short"}
    )
    assert short.status_code == 422
    assert re.search(r'id="password-error">[^<]*at least 12', short.text)
    demote = owner.post("/admin/users/owner@example.com/role", {"role": "viewer"})
    assert demote.status_code == 422
    assert "last active owner" in demote.text
    assert "new@example.com" in owner.get("/admin/users").text


def test_a_location_page_of_an_unknown_location_is_404(
    owner: AdminClient, db: Database, clock: object
) -> None:
    make_location(db, clock, "loc_x")  # type: ignore[arg-type]
    assert owner.get("/admin/locations/loc_x").status_code == 200
    assert owner.get("/admin/locations/nope").status_code == 404
    assert owner.get("/admin/locations/nope/configs").status_code == 404
