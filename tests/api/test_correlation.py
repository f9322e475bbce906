"""api-v2.md §2: a correlation id per request, in the body, the X-Correlation-Id header and the
ledger entries; a client's own id is used as given; a replay keeps the original."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kotally.db.engine import Database
from kotally.db.models import LedgerEntry
from tests.api.conftest import CHECK, PATHS, Api, check_common, is_uuid

pytestmark = pytest.mark.anyio

VALID_IDS = [
    "abc",
    "A-Z.a_z:0-9",
    "x" * 128,
    "req:2026-04-16T00:00:00.000Z",
    "0d9e8f7a-2222-4b3c-8d4e-ba9876543210",
]
INVALID_IDS = ["", " ", "x" * 129, "has space", "slash/no", "semi;colon", "émoji😀", "a,b", "\t"]


async def test_generated_per_request(api: Api) -> None:
    first = await api.post(PATHS["check"], CHECK)
    second = await api.post(PATHS["check"], CHECK)
    for response in (first, second):
        assert is_uuid(response.json()["correlation_id"])
        assert response.headers["x-correlation-id"] == response.json()["correlation_id"]
    assert first.json()["correlation_id"] != second.json()["correlation_id"]


@pytest.mark.parametrize("value", VALID_IDS)
async def test_client_id_is_used_as_given(api: Api, value: str) -> None:
    response = await api.post(PATHS["check"], CHECK, headers={"X-Correlation-Id": value})
    assert response.json()["correlation_id"] == value
    assert response.headers["x-correlation-id"] == value


@pytest.mark.parametrize("value", INVALID_IDS)
async def test_invalid_client_id_is_replaced(api: Api, value: str) -> None:
    response = await api.http.post(
        PATHS["check"],
        json=CHECK,
        headers={
            "Authorization": f"Bearer {api.token}",
            "X-Correlation-Id": value.encode(),  # type: ignore[dict-item]
        },
    )
    check_common(response)
    assert response.status_code == 200
    assert is_uuid(response.json()["correlation_id"])
    assert response.headers["x-correlation-id"] == response.json()["correlation_id"]


@pytest.mark.parametrize(
    ("method", "path", "token", "status"),
    [
        ("POST", PATHS["check"], None, 401),
        ("POST", "/api/v2/nope", "default", 404),
        ("GET", PATHS["check"], "default", 405),
    ],
)
async def test_error_bodies_carry_the_client_id(
    api: Api, method: str, path: str, token: str | None, status: int
) -> None:
    response = await api.request(
        method,
        path,
        token=api.token if token == "default" else None,
        headers={"X-Correlation-Id": "client-trace-1"},
    )
    assert response.status_code == status
    assert response.json()["correlation_id"] == "client-trace-1"
    assert response.headers["x-correlation-id"] == "client-trace-1"


async def test_validation_error_carries_a_generated_id(api: Api) -> None:
    response = await api.post(PATHS["check"], {**CHECK, "amount": 0})
    assert response.status_code == 422
    assert is_uuid(response.json()["correlation_id"])


async def test_replay_keeps_the_original_id(api: Api) -> None:
    await api.grant()
    first = await api.post(
        PATHS["deduct"],
        {**CHECK, "request_id": "k1"},
        headers={"X-Correlation-Id": "first-call"},
    )
    assert first.json()["correlation_id"] == "first-call"
    replay = await api.post(
        PATHS["deduct"],
        {**CHECK, "request_id": "k1"},
        headers={"X-Correlation-Id": "retry-call"},
    )
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["correlation_id"] == "first-call"
    assert replay.headers["x-correlation-id"] == "first-call"


async def test_replay_keeps_the_original_generated_id(api: Api) -> None:
    await api.grant()
    first = await api.deduct(request_id="k1")
    replay = await api.deduct(request_id="k1")
    assert replay.json()["correlation_id"] == first.json()["correlation_id"]
    assert replay.headers["x-correlation-id"] == first.headers["x-correlation-id"]


async def test_ledger_entries_carry_the_request_id(api: Api, db: Database) -> None:
    granted = await api.grant(request_id="g1")
    deducted = await api.post(
        PATHS["deduct"],
        {**CHECK, "request_id": "d1", "amount": 1},
        headers={"X-Correlation-Id": "booking-trace"},
    )
    assert deducted.json()["reason_code"] == "deducted"
    with db.unit_of_work(write=False) as session:
        entries = {
            entry.request_id: entry.correlation_id
            for entry in session.execute(select(LedgerEntry)).scalars()
        }
    assert entries == {"g1": granted.json()["correlation_id"], "d1": "booking-trace"}
