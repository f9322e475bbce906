"""GET /embed/api/…: the embed's read-only reads, bound to the session's one location."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kotally.auth.scopes import SCOPES
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.embed.conftest import BASE_URL, Embed
from tests.factories import Ledger, make_client, update_location

pytestmark = pytest.mark.anyio


def _reason(response: httpx.Response, status: int, reason_code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["reason_code"] == reason_code, body
    return body


@pytest.fixture
def contacts(ledger: Ledger) -> Ledger:
    """Three contacts of loc_1: Ada (2 lots of pc_package_1, one of pc_other), Bo, Cy."""
    ledger.grant(ghl_contact_id="ghl_ada", name="Ada Lovelace", email="Ada@Example.org")
    ledger.grant(ghl_contact_id="ghl_ada", name="Ada Lovelace")
    ledger.grant(ghl_contact_id="ghl_ada", product_config_id="pc_other")
    ledger.deduct(ghl_contact_id="ghl_ada", amount=3)
    ledger.grant(external_contact_id="ext_bo", name="Bo Diddley", email="bo@example.org")
    ledger.grant(ghl_contact_id="ghl_cy", name="Cy 100%_off", email="cy@example.net")
    return ledger


async def _search(embed: Embed, token: str, **params: Any) -> dict[str, Any]:
    response = await embed.get("/embed/api/contacts", token, params=params)
    return _reason(response, 200, "contacts_found")


def _names(body: dict[str, Any]) -> list[str]:
    return [contact["name"] for contact in body["contacts"]]


async def test_search_by_name_email_and_ids(embed: Embed, contacts: Ledger) -> None:
    token = await embed.sign_in()
    assert _names(await _search(embed, token, q="lovelace")) == ["Ada Lovelace"]
    assert _names(await _search(embed, token, q="ADA@example")) == ["Ada Lovelace"]
    assert _names(await _search(embed, token, q="ghl_ada")) == ["Ada Lovelace"]
    assert _names(await _search(embed, token, q="ext_bo")) == ["Bo Diddley"]
    found = _names(await _search(embed, token, q="example.org"))
    assert sorted(found) == ["Ada Lovelace", "Bo Diddley"]  # same instant: order by id
    ada = (await _search(embed, token, q="ghl_ada"))["contacts"][0]
    assert _names(await _search(embed, token, q=ada["id"])) == ["Ada Lovelace"]
    assert set(ada) == {
        "id",
        "ghl_contact_id",
        "external_contact_id",
        "email",
        "name",
        "created_at",
    }


async def test_search_ids_match_whole_values_only(embed: Embed, contacts: Ledger) -> None:
    token = await embed.sign_in()
    assert (await _search(embed, token, q="ghl_a"))["contacts"] == []
    assert (await _search(embed, token, q="ext_"))["contacts"] == []


async def test_search_treats_like_wildcards_as_text(embed: Embed, contacts: Ledger) -> None:
    token = await embed.sign_in()
    assert _names(await _search(embed, token, q="100%_")) == ["Cy 100%_off"]
    assert (await _search(embed, token, q="%"))["contacts"] == [
        (await _search(embed, token, q="cy"))["contacts"][0]
    ]
    assert (await _search(embed, token, q="a_a"))["contacts"] == []


async def test_search_never_shows_another_location(embed: Embed, contacts: Ledger) -> None:
    token = await embed.sign_in()
    assert (await _search(embed, token, q="Olive"))["contacts"] == []
    assert (await _search(embed, token, q="ghl_other_loc"))["contacts"] == []
    everyone = await _search(embed, token)
    assert "Olive Other" not in _names(everyone)


async def test_empty_search_lists_newest_first_and_pages(
    embed: Embed, contacts: Ledger, clock: FrozenClock
) -> None:
    for i in range(5):
        clock.advance(timedelta(seconds=1))
        contacts.grant(ghl_contact_id=f"ghl_p{i}", name=f"Page {i}")
    token = await embed.sign_in()
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = await _search(embed, token, **params)
        assert len(body["contacts"]) <= 3
        seen += _names(body)
        cursor = body.get("next_cursor")
        if cursor is None:
            break
    assert seen[:5] == [f"Page {i}" for i in reversed(range(5))]
    assert len(seen) == len(set(seen)) == 8  # and Ada, Bo, Cy: each once
    blank = await _search(embed, token, q="   ")
    assert len(blank["contacts"]) == 8


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"cursor": "nope"}, "cursor"),
        ({"q": "x" * 256}, "q"),
        ({"q": "a\x07b"}, "q"),
    ],
)
async def test_search_validation(
    embed: Embed, contacts: Ledger, params: dict[str, Any], field: str
) -> None:
    token = await embed.sign_in()
    response = await embed.get("/embed/api/contacts", token, params=params)
    body = _reason(response, 422, "VALIDATION_ERROR")
    assert field in {error["field"] for error in body["errors"]}


async def test_summary_is_the_api_body(
    embed: Embed, contacts: Ledger, db: Database, clock: FrozenClock, app_for_api: FastAPI
) -> None:
    token = await embed.sign_in()
    embed_body = _reason(
        await embed.get("/embed/api/contacts/ghl_ada/summary", token), 200, "summary_loaded"
    )
    api_token = make_client(db, clock, "loc_1", SCOPES).token
    transport = httpx.ASGITransport(app=app_for_api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        response = await http.get(
            "/api/v2/contacts/ghl_ada/summary",
            params={"location_id": "loc_1"},
            headers={"Authorization": f"Bearer {api_token}"},
        )
    api_body = response.json()
    assert api_body["reason_code"] == "summary_loaded"
    for body in (embed_body, api_body):
        del body["correlation_id"]
    assert embed_body == api_body
    assert embed_body["summary"]["credits_available"] == 22  # 10 + 10 + 5 - 3


@pytest.fixture
def app_for_api(embed_settings: Any, clock: FrozenClock, db: Database) -> FastAPI:
    from tests.embed.conftest import build

    return build(embed_settings, clock, db)


async def test_balances_per_product_config(embed: Embed, contacts: Ledger) -> None:
    token = await embed.sign_in()
    body = _reason(
        await embed.get("/embed/api/contacts/ghl_ada/balances", token), 200, "balances_loaded"
    )
    assert body["credits_available"] == 22
    assert [
        (b["product_config_id"], b["credits_available"], b["lots"]) for b in body["balances"]
    ] == [
        ("pc_package_1", 17, 2),
        ("pc_other", 5, 1),
    ]
    assert body["balances"][0]["product_config_name"] == "pc_package_1"
    assert body["balances"][0]["type"] == "package"


async def test_upcoming_appointments(embed: Embed, contacts: Ledger, clock: FrozenClock) -> None:
    soon = clock.now() + timedelta(days=2)
    for i in range(3):
        contacts.deduct(
            ghl_contact_id="ghl_ada",
            external_ref=f"bk_{i}",
            appointment_time=(soon + timedelta(days=i)).isoformat(),
        )
    contacts.deduct(
        ghl_contact_id="ghl_ada",
        external_ref="bk_past",
        appointment_time=(clock.now() - timedelta(days=1)).isoformat(),
    )
    token = await embed.sign_in()
    path = "/embed/api/contacts/ghl_ada/appointments/upcoming"
    body = _reason(await embed.get(path, token, params={"limit": 2}), 200, "appointments_loaded")
    assert [a["external_ref"] for a in body["appointments"]] == ["bk_0", "bk_1"]
    rest = await embed.get(path, token, params={"cursor": body["next_cursor"]})
    assert [a["external_ref"] for a in rest.json()["appointments"]] == ["bk_2"]


@pytest.mark.parametrize("suffix", ["/summary", "/balances", "/appointments/upcoming"])
async def test_another_locations_contact_is_not_found(
    embed: Embed, contacts: Ledger, suffix: str
) -> None:
    token = await embed.sign_in()
    for key in ("ghl_other_loc", "nobody", "00000000-0000-0000-0000-000000000000"):
        response = await embed.get(f"/embed/api/contacts/{key}{suffix}", token)
        _reason(response, 404, "NOT_FOUND")


async def test_a_session_of_loc_2_sees_loc_2_only(embed: Embed, contacts: Ledger) -> None:
    token = await embed.sign_in(activeLocation="loc_2")
    assert _names(await _search(embed, token)) == ["Olive Other"]
    _reason(await embed.get("/embed/api/contacts/ghl_ada/summary", token), 404, "NOT_FOUND")
    response = await embed.get("/embed/api/contacts/ghl_other_loc/summary", token)
    assert _reason(response, 200, "summary_loaded")["contact"]["name"] == "Olive Other"


async def test_the_sessions_location(
    embed: Embed, contacts: Ledger, db: Database, clock: FrozenClock
) -> None:
    token = await embed.sign_in()
    body = _reason(await embed.get("/embed/api/location", token), 200, "location_loaded")
    assert body["location"] == {"id": "loc_1", "name": "Studio loc_1", "timezone": "UTC"}
    update_location(db, clock, timezone="Asia/Tokyo", name="North Studio")
    body = _reason(await embed.get("/embed/api/location", token), 200, "location_loaded")
    assert body["location"] == {"id": "loc_1", "name": "North Studio", "timezone": "Asia/Tokyo"}
    other = await embed.sign_in(activeLocation="loc_2")
    body = _reason(await embed.get("/embed/api/location", other), 200, "location_loaded")
    assert body["location"]["id"] == "loc_2"
    clock.advance(timedelta(minutes=15))
    _reason(await embed.get("/embed/api/location", token), 401, "UNAUTHORIZED")
    _reason(await embed.get("/embed/api/location"), 401, "UNAUTHORIZED")


async def test_expired_token(embed: Embed, contacts: Ledger, clock: FrozenClock) -> None:
    token = await embed.sign_in()
    clock.advance(timedelta(minutes=15) - timedelta(seconds=1))
    _reason(await embed.get("/embed/api/contacts", token), 200, "contacts_found")
    clock.advance(timedelta(seconds=1))
    for path in ("/embed/api/contacts", "/embed/api/contacts/ghl_ada/summary"):
        response = await embed.get(path, token)
        _reason(response, 401, "UNAUTHORIZED")
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ktle_" + "A" * 43,  # well formed, never issued
        "Basic a3RsZV8=",
        "Bearer ktly_00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000000",
    ],
)
async def test_unknown_tokens(embed: Embed, contacts: Ledger, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await embed.request("GET", "/embed/api/contacts", headers=headers)
    _reason(response, 401, "UNAUTHORIZED")


async def test_an_api_token_is_not_an_embed_token(
    embed: Embed, contacts: Ledger, db: Database, clock: FrozenClock
) -> None:
    api_token = make_client(db, clock, "loc_1", SCOPES).token
    _reason(await embed.get("/embed/api/contacts", api_token), 401, "UNAUTHORIZED")


async def test_the_token_reads_only(embed: Embed, contacts: Ledger) -> None:
    token = await embed.sign_in()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    deduct = (
        '{"location_id":"loc_1","request_id":"r1","ghl_contact_id":"ghl_ada",'
        '"product_config_id":"pc_package_1","amount":1}'
    )
    for path in ("/api/v2/entitlements/deduct", "/api/v2/grants"):
        response = await embed.request("POST", path, headers=auth, content=deduct)
        _reason(response, 401, "UNAUTHORIZED")
    response = await embed.request(
        "GET", "/api/v2/contacts/ghl_ada/summary?location_id=loc_1", headers=auth
    )
    _reason(response, 401, "UNAUTHORIZED")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/embed/api/contacts", "/embed/api/contacts/ghl_ada/summary"):
            response = await embed.request(method, path, headers=auth, content="{}")
            _reason(response, 405, "METHOD_NOT_ALLOWED")
    balances = await embed.get("/embed/api/contacts/ghl_ada/balances", token)
    assert balances.json()["credits_available"] == 22  # nothing moved
