"""api-v2.md §3: 422 VALIDATION_ERROR names each bad field, with the request's own name for it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import CHECK, DEDUCT, GRANT, PATHS, RESTORE, Api

pytestmark = pytest.mark.anyio

SELECTION_BODIES = {"check": CHECK, "deduct": DEDUCT, "restore": RESTORE}
ALL_BODIES = {"grant": GRANT, **SELECTION_BODIES}
CONTACTS = ("external_contact_id", "ghl_contact_id")


def errors_of(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["reason_code"] == "VALIDATION_ERROR"
    assert body["errors"]
    for error in body["errors"]:
        assert set(error) == {"field", "message"}
        assert error["message"]
    errors: list[dict[str, str]] = body["errors"]
    return errors


def fields_of(response: httpx.Response) -> set[str]:
    return {error["field"] for error in errors_of(response)}


async def post(api: Api, endpoint: str, **changes: Any) -> httpx.Response:
    body = {**ALL_BODIES[endpoint], **changes}
    return await api.post(PATHS[endpoint], {k: v for k, v in body.items() if v is not ...})


@pytest.mark.parametrize("endpoint", list(SELECTION_BODIES))
@pytest.mark.parametrize(
    "amount", [0, -1, -10_000, 1.5, 1.0, "1", True, False, None, 10_001, 10**30, [1], {"n": 1}]
)
async def test_bad_amount(api: Api, endpoint: str, amount: object) -> None:
    assert fields_of(await post(api, endpoint, amount=amount)) == {"amount"}


@pytest.mark.parametrize("amount", [1, 10_000])
async def test_amount_bounds_are_accepted(api: Api, amount: int) -> None:
    response = await post(api, "check", amount=amount)
    assert response.status_code == 200
    assert response.json()["reason_code"] == "NO_ENTITLEMENT"


@pytest.mark.parametrize("endpoint", list(SELECTION_BODIES))
async def test_both_contact_ids(api: Api, endpoint: str) -> None:
    response = await post(api, endpoint, external_contact_id="ext_1")
    fields = fields_of(response)
    assert fields <= set(CONTACTS)
    assert fields


@pytest.mark.parametrize("endpoint", list(ALL_BODIES))
async def test_neither_contact_id(api: Api, endpoint: str) -> None:
    response = await post(api, endpoint, ghl_contact_id=...)
    fields = fields_of(response)
    assert fields <= set(CONTACTS)
    assert fields


@pytest.mark.parametrize("endpoint", list(SELECTION_BODIES))
async def test_neither_selector(api: Api, endpoint: str) -> None:
    response = await post(api, endpoint, product_config_id=...)
    assert fields_of(response) <= {"product_config_id", "calendar_id"}


async def test_grant_needs_a_product_config(api: Api) -> None:
    response = await post(api, "grant", product_config_id=..., calendar_id="cal_1")
    assert fields_of(response) == {"product_config_id"}


BAD_IDS = ["x" * 256, "", "a\x00b", "a\nb", "tab\there", "del\x7f", "c1\x85", 123, True, ["a"]]
BAD_ID_NAMES = [
    "256-chars",
    "empty",
    "nul",
    "newline",
    "tab",
    "del",
    "c1-control",
    "number",
    "bool",
    "list",
]
ID_FIELDS = ["location_id", "ghl_contact_id", "product_config_id", "request_id"]


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize("value", BAD_IDS, ids=BAD_ID_NAMES)
async def test_bad_ids(api: Api, field: str, value: object) -> None:
    assert field in fields_of(await post(api, "deduct", **{field: value}))


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        (endpoint, field)
        for endpoint in ("grant", "check", "restore")
        for field in ID_FIELDS
        if (endpoint, field) != ("check", "request_id")  # check takes no request_id
    ],
)
@pytest.mark.parametrize("value", ["x" * 256, "a\x1bb"], ids=["256-chars", "escape"])
async def test_bad_ids_on_every_endpoint(api: Api, endpoint: str, field: str, value: str) -> None:
    assert field in fields_of(await post(api, endpoint, **{field: value}))


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        ("grant", "location_id"),
        ("grant", "request_id"),
        ("grant", "external_payment_id"),
        ("grant", "product_config_id"),
        ("deduct", "location_id"),
        ("deduct", "request_id"),
    ],
)
async def test_null_for_a_required_field(api: Api, endpoint: str, field: str) -> None:
    assert field in fields_of(await post(api, endpoint, **{field: None}))


@pytest.mark.parametrize(
    "field",
    ["external_contact_id", "calendar_id", "external_ref", "external_payment_id"],
)
async def test_bad_optional_ids(api: Api, field: str) -> None:
    endpoint = "grant" if field == "external_payment_id" else "deduct"
    changes: dict[str, Any] = {field: "x" * 256}
    if field == "external_contact_id":
        changes["ghl_contact_id"] = ...
    assert fields_of(await post(api, endpoint, **changes)) == {field}


async def test_id_of_255_characters_is_accepted(api: Api) -> None:
    contact = "c" * 255
    granted = await api.grant(ghl_contact_id=contact, request_id="r" * 255)
    assert granted.json()["reason_code"] == "grant_applied"
    assert await api.balance(ghl_contact_id=contact) == 10


async def test_unicode_ids_are_accepted(api: Api) -> None:
    granted = await api.grant(ghl_contact_id="kontakt-ß-東京-😀")
    assert granted.json()["reason_code"] == "grant_applied"
    assert await api.balance(ghl_contact_id="kontakt-ß-東京-😀") == 10


@pytest.mark.parametrize("endpoint", ["deduct", "restore"])
@pytest.mark.parametrize(
    "value",
    ["nope", "2026-13-01T00:00:00Z", "2026-05-01T25:00:00Z", "12345", "", 1777629600, True, {}],
    ids=["word", "month-13", "hour-25", "digits", "empty", "epoch-number", "bool", "object"],
)
async def test_bad_appointment_time(api: Api, endpoint: str, value: object) -> None:
    assert fields_of(await post(api, endpoint, appointment_time=value)) == {"appointment_time"}


@pytest.mark.parametrize(
    "value",
    ["2026-05-01T10:00:00.000Z", "2026-05-01T12:00:00+02:00", "2026-05-01T05:00:00-05:00"],
)
async def test_appointment_time_takes_any_offset(api: Api, value: str) -> None:
    await api.grant()
    response = await api.deduct(appointment_time=value, external_ref="b1")
    assert response.json()["reason_code"] == "deducted"


@pytest.mark.parametrize("value", ["yesterday", "12345", 0])
async def test_bad_paid_at(api: Api, value: object) -> None:
    assert fields_of(await post(api, "grant", paid_at=value)) == {"paid_at"}


async def test_metadata_over_8_kib(api: Api) -> None:
    response = await post(api, "grant", metadata={"note": "x" * (8 * 1024)})
    assert fields_of(response) == {"metadata"}


async def test_metadata_up_to_8_kib_is_accepted(api: Api) -> None:
    metadata = {"note": "x" * (8 * 1024 - len('{"note":""}'))}
    response = await post(api, "grant", metadata=metadata)
    assert response.json()["reason_code"] == "grant_applied"


@pytest.mark.parametrize("value", [[1, 2], "text", 5])
async def test_metadata_must_be_an_object(api: Api, value: object) -> None:
    assert fields_of(await post(api, "grant", metadata=value)) == {"metadata"}


@pytest.mark.parametrize("value", ["US", "USDX", "U5D", "", 840, "€€€"])
async def test_bad_currency(api: Api, value: object) -> None:
    assert fields_of(await post(api, "grant", currency=value)) == {"currency"}


@pytest.mark.parametrize("value", [-1, 1.5, "9900", True])
async def test_bad_amount_cents(api: Api, value: object) -> None:
    assert fields_of(await post(api, "grant", amount_cents=value)) == {"amount_cents"}


@pytest.mark.parametrize("value", ["not-an-email", "a@", 5])
async def test_bad_email(api: Api, value: object) -> None:
    assert fields_of(await post(api, "grant", email=value)) == {"email"}


@pytest.mark.parametrize("endpoint", ["grant", "deduct", "restore"])
async def test_missing_request_id(api: Api, endpoint: str) -> None:
    errors = errors_of(await post(api, endpoint, request_id=...))
    assert errors == [{"field": "request_id", "message": "is required"}]


async def test_missing_external_payment_id(api: Api) -> None:
    errors = errors_of(await post(api, "grant", external_payment_id=...))
    assert errors == [{"field": "external_payment_id", "message": "is required"}]


@pytest.mark.parametrize("endpoint", list(ALL_BODIES))
async def test_missing_location_id(api: Api, endpoint: str) -> None:
    assert "location_id" in fields_of(await post(api, endpoint, location_id=...))


async def test_every_bad_field_is_listed(api: Api) -> None:
    response = await post(
        api, "deduct", amount=0, request_id="", appointment_time="soon", external_ref="\x01"
    )
    assert fields_of(response) == {"amount", "request_id", "appointment_time", "external_ref"}


async def test_empty_object(api: Api) -> None:
    response = await api.post(PATHS["deduct"], {})
    assert {"location_id", "request_id"} <= fields_of(response)


async def test_validation_error_applies_nothing(api: Api) -> None:
    await api.grant()
    response = await api.deduct(amount=0)
    assert response.status_code == 422
    assert await api.balance() == 10


async def test_validation_error_is_not_stored_for_the_request_id(api: Api) -> None:
    await api.grant()
    assert (await api.deduct(request_id="k1", amount=0)).status_code == 422
    response = await api.deduct(request_id="k1", amount=2)
    assert response.json()["reason_code"] == "deducted"
    assert "idempotent-replayed" not in response.headers


@pytest.mark.parametrize("endpoint", list(ALL_BODIES))
async def test_unknown_extra_fields_are_ignored(api: Api, endpoint: str) -> None:
    response = await post(api, endpoint, surprise={"nested": [1, 2]}, another=None)
    assert response.status_code == 200
