"""api-v2.md §2 precedence, first match wins: 404/405 → 401 → 429 → 403 MISSING_SCOPE →
415/413/400 → 422 → 403 LOCATION_MISMATCH → 409 → the business outcome.
(429 against the others: test_rate_limits.py.)"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.api.conftest import CHECK, DEDUCT, PATHS, Api, TokenFactory
from tests.factories import make_location

pytestmark = pytest.mark.anyio

JSON = {"Content-Type": "application/json"}
TOO_LARGE = b"{" + b" " * (64 * 1024) + b"}"


def assert_reason(response: httpx.Response, status: int, reason_code: str) -> None:
    assert (response.status_code, response.json()["reason_code"]) == (status, reason_code)


async def test_unknown_route_before_authentication(api: Api) -> None:
    response = await api.post("/api/v2/nope", content=b"[", headers=JSON, token=None)
    assert_reason(response, 404, "ROUTE_NOT_FOUND")


async def test_wrong_method_before_authentication(api: Api) -> None:
    response = await api.request("GET", PATHS["deduct"], token="garbage")
    assert_reason(response, 405, "METHOD_NOT_ALLOWED")


async def test_no_token_and_bad_json(api: Api) -> None:
    response = await api.post(PATHS["deduct"], content=b"not json", headers=JSON, token=None)
    assert_reason(response, 401, "UNAUTHORIZED")


async def test_bad_token_and_everything_else_wrong(api: Api) -> None:
    response = await api.post(
        PATHS["deduct"], content=TOO_LARGE, headers={"Content-Type": "text/plain"}, token="x"
    )
    assert_reason(response, 401, "UNAUTHORIZED")


async def test_missing_scope_and_bad_json(api: Api, make_token: TokenFactory) -> None:
    token = make_token(scopes=["check"])
    response = await api.post(PATHS["deduct"], content=b"[1]", headers=JSON, token=token)
    assert_reason(response, 403, "MISSING_SCOPE")


async def test_missing_scope_and_wrong_content_type(api: Api, make_token: TokenFactory) -> None:
    token = make_token(scopes=["check"])
    response = await api.post(PATHS["deduct"], content=b"{}", token=token)
    assert_reason(response, 403, "MISSING_SCOPE")


async def test_missing_scope_and_too_large(api: Api, make_token: TokenFactory) -> None:
    token = make_token(scopes=["check"])
    response = await api.post(PATHS["deduct"], content=TOO_LARGE, headers=JSON, token=token)
    assert_reason(response, 403, "MISSING_SCOPE")


async def test_missing_scope_and_invalid_fields_and_wrong_location(
    api: Api, make_token: TokenFactory
) -> None:
    token = make_token(scopes=["check"])
    body = {**DEDUCT, "amount": 0, "location_id": "loc_2"}
    assert_reason(await api.post(PATHS["deduct"], body, token=token), 403, "MISSING_SCOPE")


async def test_wrong_content_type_and_invalid_fields(api: Api) -> None:
    response = await api.post(
        PATHS["deduct"], content=b'{"amount": 0}', headers={"Content-Type": "text/plain"}
    )
    assert_reason(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_wrong_content_type_and_bad_json(api: Api) -> None:
    response = await api.post(PATHS["deduct"], content=b"[", headers={"Content-Type": "text/plain"})
    assert_reason(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_wrong_content_type_and_too_large(api: Api) -> None:
    response = await api.post(
        PATHS["deduct"], content=TOO_LARGE, headers={"Content-Type": "text/plain"}
    )
    assert_reason(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_too_large_and_invalid_fields(api: Api) -> None:
    body = {**DEDUCT, "amount": 0, "padding": "x" * (64 * 1024)}
    assert_reason(await api.post(PATHS["deduct"], body), 413, "PAYLOAD_TOO_LARGE")


async def test_bad_json_and_wrong_location(api: Api) -> None:
    response = await api.post(
        PATHS["deduct"], content=b'{"location_id": "loc_2", "location_id": "loc_2"}', headers=JSON
    )
    assert_reason(response, 400, "INVALID_JSON")


async def test_invalid_fields_and_wrong_location(api: Api) -> None:
    body = {**DEDUCT, "amount": 0, "location_id": "loc_2"}
    assert_reason(await api.post(PATHS["deduct"], body), 422, "VALIDATION_ERROR")


async def test_missing_location_is_a_validation_error(api: Api) -> None:
    body = {key: value for key, value in CHECK.items() if key != "location_id"}
    assert_reason(await api.post(PATHS["check"], body), 422, "VALIDATION_ERROR")


async def test_invalid_fields_and_reused_key(api: Api) -> None:
    await api.grant()
    assert (await api.deduct(request_id="k1")).json()["reason_code"] == "deducted"
    response = await api.deduct(request_id="k1", amount=0)
    assert_reason(response, 422, "VALIDATION_ERROR")


async def test_wrong_location_and_reused_key(api: Api, db: Database, clock: FrozenClock) -> None:
    make_location(db, clock, "loc_2")
    await api.grant()
    assert (await api.deduct(request_id="k1")).json()["reason_code"] == "deducted"
    response = await api.deduct(request_id="k1", amount=2, location_id="loc_2")
    assert_reason(response, 403, "LOCATION_MISMATCH")


async def test_reused_key_and_suspended_billing(
    api: Api, set_location: Callable[..., None]
) -> None:
    await api.grant()
    assert (await api.deduct(request_id="k1")).json()["reason_code"] == "deducted"
    set_location(billing_status="suspended")
    response = await api.deduct(request_id="k1", amount=2)
    assert_reason(response, 409, "IDEMPOTENCY_KEY_REUSED")


async def test_replay_before_suspended_billing(api: Api, set_location: Callable[..., None]) -> None:
    await api.grant()
    first = await api.deduct(request_id="k1")
    set_location(billing_status="suspended")
    replay = await api.deduct(request_id="k1")
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"


async def test_reused_key_before_business_outcome(api: Api) -> None:
    # The key's payload conflict is answered even though the new payload would be refused.
    await api.grant()
    await api.deduct(request_id="k1")
    response = await api.deduct(request_id="k1", product_config_id="pc_unknown")
    assert_reason(response, 409, "IDEMPOTENCY_KEY_REUSED")
