"""api-v2.md §4.6: GET /api/v2/contacts/{id}/… (scope `summary`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.api.conftest import Api, TokenFactory, is_uuid
from tests.factories import make_config, make_location

pytestmark = pytest.mark.anyio

READS = {
    "": "contact_loaded",
    "/summary": "summary_loaded",
    "/credits": "credits_loaded",
    "/entitlements": "entitlements_loaded",
    "/appointments/upcoming": "appointments_loaded",
    "/appointments/past": "appointments_loaded",
    "/ledger": "ledger_loaded",
    "/payments": "payments_loaded",
    "/timeline": "timeline_loaded",
}
LISTS = {
    "/entitlements": "entitlements",
    "/appointments/upcoming": "appointments",
    "/appointments/past": "appointments",
    "/ledger": "entries",
    "/payments": "payments",
    "/timeline": "items",
}
CONTACT_FIELDS = {"id", "ghl_contact_id", "external_contact_id", "email", "name", "created_at"}
SHORT_LOT = {"id", "product_config_id", "status", "credits_remaining", "expires_at"}
FULL_LOT = SHORT_LOT | {
    "product_config_name",
    "type",
    "credits_granted",
    "credits_used",
    "effective_at",
    "grant_id",
    "created_at",
}
ENTRY = {
    "id",
    "kind",
    "amount",
    "entitlement_id",
    "product_config_id",
    "entitlement_balance_after",
    "request_id",
    "external_ref",
    "appointment_time",
    "correlation_id",
    "actor",
    "created_at",
}
APPOINTMENT = {
    "id",
    "external_ref",
    "calendar_id",
    "appointment_time",
    "status",
    "credits_deducted",
    "credits_restored",
}
PAYMENT = {
    "id",
    "external_payment_id",
    "provider",
    "event_type",
    "amount_cents",
    "currency",
    "paid_at",
    "product_config_id",
    "entitlement_id",
    "credits_granted",
}


async def read(
    api: Api, path: str, contact: str = "ghl_contact_123", **params: Any
) -> httpx.Response:
    params.setdefault("location_id", "loc_1")
    params = {key: value for key, value in params.items() if value is not None}
    return await api.get(f"/api/v2/contacts/{contact}{path}", params=params)


def loaded(response: httpx.Response, reason_code: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert (body["ok"], body["reason_code"]) == (True, reason_code), body
    return body


def field_errors(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.json()["reason_code"] == "VALIDATION_ERROR"
    return {error["field"] for error in response.json()["errors"]}


@pytest.fixture
async def history(api: Api, clock: FrozenClock) -> dict[str, Any]:
    """3 payments (3 lots, 3 grant entries), 3 upcoming and 3 past bookings (6 deduct entries)."""
    grants = []
    for i in range(3):
        response = await api.grant(
            email="member@example.com",
            name="Member Example",
            paid_at=f"2026-04-1{i}T00:00:00.000Z",
            external_payment_id=f"pay_{i}",
        )
        grants.append(response.json())
        clock.advance(timedelta(minutes=1))
    for i in range(3):
        await api.deduct(external_ref=f"up_{i}", appointment_time=f"2026-05-0{i + 1}T10:00:00Z")
        await api.deduct(external_ref=f"past_{i}", appointment_time=f"2026-04-0{i + 1}T10:00:00Z")
        clock.advance(timedelta(minutes=1))
    return {"contact_id": grants[0]["contact_id"], "grants": grants}


@pytest.mark.parametrize(("path", "reason_code"), list(READS.items()))
async def test_each_read(api: Api, history: dict[str, Any], path: str, reason_code: str) -> None:
    body = loaded(await read(api, path), reason_code)
    assert is_uuid(body["correlation_id"])
    if path in LISTS:
        assert body[LISTS[path]]
        assert "next_cursor" not in body


async def test_contact(api: Api, history: dict[str, Any]) -> None:
    contact = loaded(await read(api, ""), "contact_loaded")["contact"]
    assert set(contact) == CONTACT_FIELDS
    assert contact["id"] == history["contact_id"]
    assert contact["ghl_contact_id"] == "ghl_contact_123"
    assert contact["email"] == "member@example.com"
    assert contact["name"] == "Member Example"
    assert contact["created_at"] == "2026-04-16T00:00:00.000Z"


async def test_summary(api: Api, history: dict[str, Any]) -> None:
    body = loaded(await read(api, "/summary"), "summary_loaded")
    assert body["contact"]["id"] == history["contact_id"]
    summary = body["summary"]
    assert summary["credits_available"] == 24
    assert summary["last_paid_at"] == "2026-04-12T00:00:00.000Z"
    assert summary["lifetime_value_cents"] == 3 * 9900
    assert summary["payment_events_count"] == 3
    assert len(summary["entitlements"]) == 3
    assert all(set(lot) == SHORT_LOT for lot in summary["entitlements"])
    assert len(summary["recent_ledger"]) == 5
    assert all(set(entry) == ENTRY for entry in summary["recent_ledger"])
    assert len(summary["recent_appointments"]) == 5
    assert all(set(item) == APPOINTMENT for item in summary["recent_appointments"])
    assert len(summary["recent_payments"]) == 3
    assert all(set(item) == PAYMENT for item in summary["recent_payments"])


async def test_summary_matches_the_published_example(api: Api) -> None:
    await api.grant(email="member@example.com", name="Member Example")
    await api.deduct()
    response = await api.get("/api/v2/contacts/ghl_contact_123/summary?location_id=loc_1")
    body = loaded(response, "summary_loaded")
    assert body["contact"]["ghl_contact_id"] == "ghl_contact_123"
    assert body["contact"]["email"] == "member@example.com"
    assert body["contact"]["name"] == "Member Example"
    summary = body["summary"]
    assert summary["credits_available"] == 9
    assert summary["last_paid_at"] == "2026-04-16T00:00:00.000Z"
    assert summary["lifetime_value_cents"] == 9900
    assert summary["payment_events_count"] == 1
    [lot] = summary["entitlements"]
    assert is_uuid(lot["id"])
    assert lot == {
        "id": lot["id"],
        "product_config_id": "pc_package_1",
        "status": "active",
        "credits_remaining": 9,
        "expires_at": None,
    }


async def test_credits(api: Api, history: dict[str, Any]) -> None:
    body = loaded(await read(api, "/credits"), "credits_loaded")
    assert body["credits_available"] == 24
    assert {lot["id"] for lot in body["entitlements"]} == {
        grant["entitlement_id"] for grant in history["grants"]
    }
    assert all(set(lot) == SHORT_LOT for lot in body["entitlements"])


async def test_entitlements_full_form_newest_first(api: Api, history: dict[str, Any]) -> None:
    lots = loaded(await read(api, "/entitlements"), "entitlements_loaded")["entitlements"]
    assert all(set(lot) == FULL_LOT for lot in lots)
    assert [lot["id"] for lot in lots] == [
        grant["entitlement_id"] for grant in reversed(history["grants"])
    ]
    oldest = lots[-1]
    assert (oldest["credits_granted"], oldest["credits_used"]) == (10, 6)
    assert (oldest["credits_remaining"], oldest["status"]) == (4, "active")
    assert (oldest["type"], oldest["product_config_name"]) == ("package", "pc_package_1")


async def test_upcoming_appointments_soonest_first(api: Api, history: dict[str, Any]) -> None:
    items = loaded(await read(api, "/appointments/upcoming"), "appointments_loaded")
    appointments = items["appointments"]
    assert [a["external_ref"] for a in appointments] == ["up_0", "up_1", "up_2"]
    assert all(set(a) == APPOINTMENT for a in appointments)
    assert appointments[0]["appointment_time"] == "2026-05-01T10:00:00.000Z"
    assert (appointments[0]["status"], appointments[0]["credits_deducted"]) == ("booked", 1)


async def test_past_appointments_latest_first(api: Api, history: dict[str, Any]) -> None:
    items = loaded(await read(api, "/appointments/past"), "appointments_loaded")
    assert [a["external_ref"] for a in items["appointments"]] == ["past_2", "past_1", "past_0"]


async def test_upcoming_turns_past_with_the_clock(api: Api, clock: FrozenClock) -> None:
    await api.grant()
    await api.deduct(external_ref="b1", appointment_time="2026-05-01T10:00:00.000Z")
    clock.set(datetime(2026, 5, 1, 10, tzinfo=UTC))
    upcoming = (await read(api, "/appointments/upcoming")).json()["appointments"]
    assert [a["external_ref"] for a in upcoming] == ["b1"]
    clock.advance(timedelta(milliseconds=1))
    assert (await read(api, "/appointments/upcoming")).json()["appointments"] == []
    past = (await read(api, "/appointments/past")).json()["appointments"]
    assert [a["external_ref"] for a in past] == ["b1"]


async def test_restore_cancels_the_appointment(api: Api) -> None:
    await api.grant()
    await api.deduct(external_ref="b1", appointment_time="2026-05-01T10:00:00.000Z")
    await api.restore(external_ref="b1")
    [appointment] = (await read(api, "/appointments/upcoming")).json()["appointments"]
    assert appointment["status"] == "cancelled"
    assert (appointment["credits_deducted"], appointment["credits_restored"]) == (1, 1)


async def test_ledger_newest_first(api: Api, history: dict[str, Any]) -> None:
    entries = loaded(await read(api, "/ledger"), "ledger_loaded")["entries"]
    assert len(entries) == 9
    assert all(set(entry) == ENTRY for entry in entries)
    assert [entry["kind"] for entry in entries] == ["deduct"] * 6 + ["grant"] * 3
    assert entries[0]["external_ref"] == "past_2"
    assert entries[0]["amount"] == -1
    assert entries[-1]["amount"] == 10
    assert entries[-1]["entitlement_balance_after"] == 10
    assert entries[-1]["entitlement_id"] == history["grants"][0]["entitlement_id"]
    assert entries[-1]["correlation_id"] == history["grants"][0]["correlation_id"]


async def test_payments_newest_first(api: Api, history: dict[str, Any]) -> None:
    payments = loaded(await read(api, "/payments"), "payments_loaded")["payments"]
    assert [p["external_payment_id"] for p in payments] == ["pay_2", "pay_1", "pay_0"]
    assert payments[0] == {
        "id": payments[0]["id"],
        "external_payment_id": "pay_2",
        "provider": "automation",
        "event_type": "payment_confirmed",
        "amount_cents": 9900,
        "currency": "USD",
        "paid_at": "2026-04-12T00:00:00.000Z",
        "product_config_id": "pc_package_1",
        "entitlement_id": history["grants"][2]["entitlement_id"],
        "credits_granted": 10,
    }


async def test_timeline_merges_newest_first(api: Api, history: dict[str, Any]) -> None:
    items = loaded(await read(api, "/timeline", limit=100), "timeline_loaded")["items"]
    assert len(items) == 9 + 6 + 3
    assert {item["type"] for item in items} == {"ledger_entry", "appointment", "payment"}
    times = [item["at"] for item in items]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("path", list(LISTS))
async def test_pagination_walks_every_item_once(
    api: Api, history: dict[str, Any], path: str
) -> None:
    everything = loaded(await read(api, path, limit=100), READS[path])[LISTS[path]]
    walked: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        body = loaded(await read(api, path, limit=2, cursor=cursor), READS[path])
        assert len(body[LISTS[path]]) <= 2
        walked += body[LISTS[path]]
        pages += 1
        cursor = body.get("next_cursor")
        if cursor is None:
            break
        assert isinstance(cursor, str)
        assert pages < 50
    assert walked == everything
    assert pages == (len(everything) + 1) // 2


async def test_limit_defaults_to_20(api: Api) -> None:
    for _ in range(3):
        await api.grant()
    await api.deduct(amount=25)  # 3 lots: 3 grant entries and 3 deduct entries
    for _ in range(15):
        await api.restore(amount=1)
    body = loaded(await read(api, "/ledger"), "ledger_loaded")
    assert len(body["entries"]) == 20
    assert "next_cursor" in body
    rest = loaded(await read(api, "/ledger", cursor=body["next_cursor"]), "ledger_loaded")
    assert len(rest["entries"]) == 1
    assert "next_cursor" not in rest


@pytest.mark.parametrize("path", list(LISTS))
@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", ""])
async def test_bad_limit(api: Api, path: str, limit: str) -> None:
    assert field_errors(await read(api, path, limit=limit)) == {"limit"}


@pytest.mark.parametrize("limit", ["1", "100"])
async def test_limit_bounds(api: Api, history: dict[str, Any], limit: str) -> None:
    body = loaded(await read(api, "/ledger", limit=limit), "ledger_loaded")
    assert len(body["entries"]) == min(int(limit), 9)


@pytest.mark.parametrize("cursor", ["zzz", "e30", "W10", "x" * 2000])
async def test_bad_cursor(api: Api, history: dict[str, Any], cursor: str) -> None:
    assert field_errors(await read(api, "/ledger", cursor=cursor)) == {"cursor"}


async def test_cursor_of_another_list(api: Api, history: dict[str, Any]) -> None:
    cursor = (await read(api, "/payments", limit=1)).json()["next_cursor"]
    assert field_errors(await read(api, "/entitlements", cursor=cursor)) == {"cursor"}


@pytest.mark.parametrize("path", list(READS))
async def test_unknown_contact_is_not_found(api: Api, history: dict[str, Any], path: str) -> None:
    response = await read(api, path, contact="ghl_stranger")
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["reason_code"]) == (False, "NOT_FOUND")
    assert set(body) <= {"ok", "reason_code", "correlation_id", "message"}


@pytest.mark.parametrize("key", ["uuid", "ghl", "external"])
async def test_any_contact_key(api: Api, key: str) -> None:
    granted = (await api.grant(external_contact_id="ext_7", ghl_contact_id="ghl_7")).json()
    contact = {"uuid": granted["contact_id"], "ghl": "ghl_7", "external": "ext_7"}[key]
    body = loaded(await read(api, "", contact=contact), "contact_loaded")["contact"]
    assert body["id"] == granted["contact_id"]
    assert (body["ghl_contact_id"], body["external_contact_id"]) == ("ghl_7", "ext_7")


async def test_contact_ids_with_reserved_characters(api: Api) -> None:
    # Not "/": the path is routed decoded, so an id holding "/" cannot be read (reported).
    await api.grant(ghl_contact_id="a b?c#d%e&f")
    contact = "a%20b%3Fc%23d%25e%26f"
    body = loaded(await read(api, "/credits", contact=contact), "credits_loaded")
    assert body["credits_available"] == 10


async def test_a_uuid_of_another_location_is_not_found(
    api: Api, db: Database, clock: FrozenClock, make_token: TokenFactory
) -> None:
    make_location(db, clock, "loc_2")
    make_config(db, clock, location_id="loc_2")
    other = make_token(location_id="loc_2")
    granted = await api.grant(location_id="loc_2", token=other)
    response = await read(api, "", contact=granted.json()["contact_id"])
    assert response.json()["reason_code"] == "NOT_FOUND"


@pytest.mark.parametrize("path", list(READS))
async def test_location_id_is_required(api: Api, path: str) -> None:
    response = await api.get(f"/api/v2/contacts/ghl_contact_123{path}")
    assert field_errors(response) == {"location_id"}


@pytest.mark.parametrize("path", list(READS))
async def test_location_mismatch(api: Api, history: dict[str, Any], path: str) -> None:
    response = await read(api, path, location_id="loc_2")
    assert response.status_code == 403
    assert response.json()["reason_code"] == "LOCATION_MISMATCH"


@pytest.mark.parametrize("path", list(LISTS))
async def test_bad_cursor_before_location_mismatch(
    api: Api, history: dict[str, Any], path: str
) -> None:
    # api-v2.md §2: 422 comes before 403 LOCATION_MISMATCH, for a query parameter too.
    assert field_errors(await read(api, path, location_id="loc_2", cursor="zzz")) == {"cursor"}


async def test_cursor_of_another_list_before_location_mismatch(
    api: Api, history: dict[str, Any]
) -> None:
    cursor = (await read(api, "/ledger", limit=1)).json()["next_cursor"]
    response = await read(api, "/timeline", location_id="loc_2", cursor=cursor)
    assert field_errors(response) == {"cursor"}
    own = (await read(api, "/timeline", limit=1)).json()["next_cursor"]
    response = await read(api, "/timeline", location_id="loc_2", cursor=own)
    assert response.json()["reason_code"] == "LOCATION_MISMATCH"


async def test_location_mismatch_before_not_found(api: Api) -> None:
    response = await read(api, "/summary", contact="ghl_stranger", location_id="loc_2")
    assert response.json()["reason_code"] == "LOCATION_MISMATCH"


@pytest.mark.parametrize("path", list(READS))
async def test_summary_scope_required(api: Api, make_token: TokenFactory, path: str) -> None:
    token = make_token(scopes=["grant", "check", "deduct", "restore"])
    response = await api.get(
        f"/api/v2/contacts/c{path}", params={"location_id": "loc_1"}, token=token
    )
    assert response.status_code == 403
    assert response.json()["reason_code"] == "MISSING_SCOPE"


async def test_summary_scope_is_enough(
    api: Api, history: dict[str, Any], make_token: TokenFactory
) -> None:
    token = make_token(scopes=["summary"])
    response = await api.get(
        "/api/v2/contacts/ghl_contact_123/summary", params={"location_id": "loc_1"}, token=token
    )
    loaded(response, "summary_loaded")
    assert (await api.deduct(token=token)).json()["reason_code"] == "MISSING_SCOPE"


async def test_unauthorized(api: Api) -> None:
    response = await api.get(
        "/api/v2/contacts/ghl_contact_123", params={"location_id": "loc_1"}, token=None
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_no_token_and_bad_limit(api: Api) -> None:
    response = await api.get(
        "/api/v2/contacts/c/ledger", params={"location_id": "x", "limit": "0"}, token=None
    )
    assert response.status_code == 401


async def test_missing_scope_and_bad_limit(api: Api, make_token: TokenFactory) -> None:
    response = await api.get(
        "/api/v2/contacts/c/ledger",
        params={"location_id": "loc_2", "limit": "0"},
        token=make_token(scopes=["check"]),
    )
    assert response.json()["reason_code"] == "MISSING_SCOPE"


async def test_bad_limit_and_wrong_location(api: Api) -> None:
    assert field_errors(await read(api, "/ledger", location_id="loc_2", limit=0)) == {"limit"}


async def test_contact_id_too_long(api: Api) -> None:
    assert field_errors(await read(api, "", contact="x" * 256)) == {"id"}


async def test_contact_id_with_control_characters(api: Api) -> None:
    assert field_errors(await read(api, "/summary", contact="a%01b")) == {"id"}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_reads_only_answer_get(api: Api, method: str) -> None:
    response = await api.request(method, "/api/v2/contacts/c/summary?location_id=loc_1")
    assert response.status_code == 405
    assert response.json()["reason_code"] == "METHOD_NOT_ALLOWED"


async def test_reads_are_described_in_openapi(api: Api) -> None:
    paths = (await api.get("/openapi.json", token=None)).json()["paths"]
    described = {path for path, operations in paths.items() if "get" in operations}
    assert {f"/api/v2/contacts/{{id}}{path}" for path in READS} <= described
