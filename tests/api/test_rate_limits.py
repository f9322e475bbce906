"""api-v2.md §2: per-client token buckets, 429 RATE_LIMITED with Retry-After, and the
RateLimit-* headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import throttled.utils
from fastapi import FastAPI

from kotally.app import create_app
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.api.conftest import CHECK, DEDUCT, PATHS, Api, TokenFactory, build_client

pytestmark = pytest.mark.anyio

RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


class BucketClock:
    """throttled-py refills buckets by whole seconds of time.time(); tests move it by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture(autouse=True)
def bucket_clock(monkeypatch: pytest.MonkeyPatch) -> BucketClock:
    clock = BucketClock()
    monkeypatch.setattr(throttled.utils, "now_sec", clock)
    return clock


def limited_app(
    api_settings: Settings, clock: FrozenClock, db: Database, rate: int, burst: int
) -> FastAPI:
    settings = api_settings.model_copy(
        update={"rate_limit_per_second": rate, "rate_limit_burst": burst}
    )
    return create_app(settings, clock=clock, db=db)


@pytest.fixture
async def limited(
    api_settings: Settings, clock: FrozenClock, db: Database, token: str, anyio_backend: str
) -> AsyncIterator[Api]:
    """Every client: 1 request per second, bursts of 2. The third quick request is limited."""
    async with build_client(limited_app(api_settings, clock, db, 1, 2)) as http:
        yield Api(http, token)


@pytest.fixture
async def generous(
    api_settings: Settings, clock: FrozenClock, db: Database, token: str, anyio_backend: str
) -> AsyncIterator[Api]:
    """A default of 1000 per second: only clients with their own --rate-limit are limited."""
    async with build_client(limited_app(api_settings, clock, db, 1000, 2000)) as http:
        yield Api(http, token)


def rate_headers(response: httpx.Response) -> tuple[int, int, int]:
    return tuple(int(response.headers[name]) for name in RATE_HEADERS)  # type: ignore[return-value]


async def test_headers_count_down_then_429(limited: Api) -> None:
    first = await limited.post(PATHS["check"], CHECK)
    second = await limited.post(PATHS["check"], CHECK)
    third = await limited.post(PATHS["check"], CHECK)
    assert first.status_code == 200
    assert rate_headers(first) == (1, 1, 0)
    assert second.status_code == 200
    assert rate_headers(second) == (1, 0, 1)
    assert third.status_code == 429
    assert third.json()["reason_code"] == "RATE_LIMITED"
    assert int(third.headers["retry-after"]) >= 1
    limit, remaining, reset = rate_headers(third)
    assert (limit, remaining) == (1, 0)
    assert reset >= 1
    assert "retry-after" not in first.headers


async def test_headers_on_authenticated_error_responses(
    limited: Api, make_token: TokenFactory
) -> None:
    invalid = await limited.post(PATHS["check"], {**CHECK, "amount": 0})
    assert invalid.status_code == 422
    assert all(name in invalid.headers for name in RATE_HEADERS)
    no_scope = await limited.post(PATHS["deduct"], DEDUCT, token=make_token(scopes=["check"]))
    assert no_scope.status_code == 403
    assert all(name in no_scope.headers for name in RATE_HEADERS)


async def test_no_headers_on_unauthenticated_responses(limited: Api) -> None:
    unauthorized = await limited.post(PATHS["check"], CHECK, token=None)
    not_found = await limited.post("/api/v2/nope", CHECK)
    health = await limited.get("/healthz")
    for response in (unauthorized, not_found, health):
        assert not any(name in response.headers for name in RATE_HEADERS), response.headers


async def test_no_headers_when_limiting_is_off(api: Api) -> None:
    responses = [await api.post(PATHS["check"], CHECK) for _ in range(5)]
    for response in responses:
        assert response.status_code == 200
        assert not any(name in response.headers for name in RATE_HEADERS)


async def test_off_means_never_limited(api: Api) -> None:
    statuses = {(await api.post(PATHS["check"], CHECK)).status_code for _ in range(30)}
    assert statuses == {200}


async def test_buckets_are_per_client(limited: Api, make_token: TokenFactory) -> None:
    for _ in range(3):
        last = await limited.post(PATHS["check"], CHECK)
    assert last.status_code == 429
    other = await limited.post(PATHS["check"], CHECK, token=make_token())
    assert other.status_code == 200


async def test_unauthenticated_requests_are_never_429(limited: Api) -> None:
    statuses = {
        (await limited.post(PATHS["check"], CHECK, token="x")).status_code for _ in range(5)
    }
    assert statuses == {401}


async def test_rate_limited_before_missing_scope(limited: Api, make_token: TokenFactory) -> None:
    token = make_token(scopes=["check"])
    responses = [await limited.post(PATHS["deduct"], DEDUCT, token=token) for _ in range(3)]
    assert [r.json()["reason_code"] for r in responses] == [
        "MISSING_SCOPE",
        "MISSING_SCOPE",
        "RATE_LIMITED",
    ]


async def test_rate_limited_before_body_errors(limited: Api) -> None:
    for _ in range(2):
        await limited.post(PATHS["check"], CHECK)
    response = await limited.post(PATHS["deduct"], content=b"[", headers={})
    assert response.status_code == 429


async def test_rate_limited_before_query_errors(limited: Api) -> None:
    """A contact read authenticates in its own transaction; a request whose query fails
    validation never reaches it, and is still counted and limited before its 422."""
    params = {"location_id": "loc_1", "limit": "0"}
    responses = [await limited.get("/api/v2/contacts/c/ledger", params=params) for _ in range(3)]
    assert [r.status_code for r in responses] == [422, 422, 429]
    assert all("ratelimit-remaining" in r.headers for r in responses)


async def test_rate_limited_request_applies_nothing_and_is_not_stored(
    limited: Api, make_token: TokenFactory
) -> None:
    assert (await limited.grant()).json()["reason_code"] == "grant_applied"
    await limited.post(PATHS["check"], CHECK)
    limited_deduct = await limited.deduct(request_id="k-429")
    assert limited_deduct.status_code == 429
    # Another client of the same location shares the key space: the key is still unused.
    other = make_token()
    retried = await limited.deduct(request_id="k-429", token=other)
    assert retried.json()["reason_code"] == "deducted"
    assert retried.json()["balance_after"] == 9
    assert "idempotent-replayed" not in retried.headers


async def test_client_rate_limit_overrides_the_default(
    generous: Api, make_token: TokenFactory
) -> None:
    slow = make_token(rate_limit=1)  # `kotally client create … --rate-limit 1`: burst 2
    responses = [await generous.post(PATHS["check"], CHECK, token=slow) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert rate_headers(responses[0]) == (1, 1, 0)
    fast = [await generous.post(PATHS["check"], CHECK) for _ in range(10)]
    assert {r.status_code for r in fast} == {200}
    assert int(fast[-1].headers["ratelimit-limit"]) == 1000
    assert int(fast[-1].headers["ratelimit-remaining"]) >= 1980


@pytest.mark.parametrize("rate", [1, 5, 250])
async def test_client_burst_is_twice_its_rate(
    generous: Api, make_token: TokenFactory, rate: int
) -> None:
    response = await generous.post(PATHS["check"], CHECK, token=make_token(rate_limit=rate))
    assert rate_headers(response) == (rate, 2 * rate - 1, 0)


async def test_default_burst_comes_from_the_settings(generous: Api) -> None:
    response = await generous.post(PATHS["check"], CHECK)
    assert rate_headers(response) == (1000, 1999, 0)


async def test_a_token_comes_back_after_retry_after(
    limited: Api, bucket_clock: BucketClock
) -> None:
    for _ in range(2):
        await limited.post(PATHS["check"], CHECK)
    refused = await limited.post(PATHS["check"], CHECK)
    assert refused.status_code == 429
    bucket_clock.now += int(refused.headers["retry-after"])
    again = await limited.post(PATHS["check"], CHECK)
    assert again.status_code == 200
    assert rate_headers(again) == (1, 0, 1)
    assert (await limited.post(PATHS["check"], CHECK)).status_code == 429
