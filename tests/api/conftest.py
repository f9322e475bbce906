"""HTTP fixtures: the app on a migrated database, API tokens, and a client that checks what every
response must carry (security headers, the envelope, no internals)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI

from kotally.app import create_app
from kotally.auth.scopes import SCOPES
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from kotally.observability import configure_logging
from tests.factories import make_client, make_config, make_location, update_location

BASE_URL = "http://kotally.test"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
# What must never reach a client: tracebacks, SQL, driver and library names.
LEAKS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3", "SELECT ", "INSERT ", "UPDATE ")
WINDOW_HOURS = 24

# The published examples of api-v2.md §6, as dicts, for tests that vary them.
GRANT = {
    "location_id": "loc_1",
    "request_id": "grant_req_123",
    "external_payment_id": "payment_123",
    "ghl_contact_id": "ghl_contact_123",
    "product_config_id": "pc_package_1",
    "amount_cents": 9900,
    "currency": "USD",
    "paid_at": "2026-04-16T00:00:00.000Z",
}
CHECK = {
    "location_id": "loc_1",
    "ghl_contact_id": "ghl_contact_123",
    "product_config_id": "pc_package_1",
    "amount": 1,
}
DEDUCT = {
    "location_id": "loc_1",
    "request_id": "booking-123-deduct",
    "ghl_contact_id": "ghl_contact_123",
    "product_config_id": "pc_package_1",
    "amount": 1,
    "external_ref": "booking_123",
}
RESTORE = {
    "location_id": "loc_1",
    "request_id": "booking-123-restore",
    "ghl_contact_id": "ghl_contact_123",
    "product_config_id": "pc_package_1",
    "amount": 1,
    "external_ref": "booking_123",
    "appointment_time": "2026-05-01T10:00:00.000Z",
}
PATHS = {
    "grant": "/api/v2/grants",
    "check": "/api/v2/entitlements/check-eligibility",
    "deduct": "/api/v2/entitlements/deduct",
    "restore": "/api/v2/entitlements/restore",
}
# The summary of the contact the grants above create.
SUMMARY = "/api/v2/contacts/ghl_contact_123/summary?location_id=loc_1"

_DEFAULT: Any = object()


def is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def check_common(response: httpx.Response) -> None:
    """What every response of the app carries, whatever its status."""
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))
    assert response.headers.get("x-correlation-id"), dict(response.headers)
    for leak in LEAKS:
        assert leak not in response.text, (leak, response.text[:500])
    if response.request.url.path.startswith("/api/"):
        assert response.headers["content-type"] == "application/json"
    if response.headers.get("content-type", "").startswith("application/json") and (
        response.request.url.path.startswith("/api/") or response.status_code >= 400
    ):
        body = response.json()
        assert isinstance(body["ok"], bool)
        assert isinstance(body["reason_code"], str)
        assert body["correlation_id"] == response.headers["x-correlation-id"]
        if response.status_code >= 400:
            assert body["ok"] is False
            assert body["reason_code"].isupper()
            assert isinstance(body["message"], str)
            assert body["message"]


class Api:
    """An httpx client for the app, with a default token and the published bodies."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.token = token

    def headers(self, token: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return {**headers, **(extra or {})}

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = _DEFAULT,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        token = self.token if token is _DEFAULT else token
        response = await self.http.request(
            method, path, headers=self.headers(token, headers), **kwargs
        )
        check_common(response)
        return response

    async def post(
        self, path: str, body: Any = None, *, content: bytes | str | None = None, **kw: Any
    ) -> httpx.Response:
        if content is None:
            content = json.dumps(body)
            kw["headers"] = {"Content-Type": "application/json", **(kw.get("headers") or {})}
        return await self.request("POST", path, content=content, **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def grant(self, *, token: str | None = _DEFAULT, **fields: Any) -> httpx.Response:
        body = {
            **GRANT,
            "request_id": f"grant-{uuid.uuid4()}",
            "external_payment_id": f"pay-{uuid.uuid4()}",
            **fields,
        }
        return await self.post(PATHS["grant"], _drop_none(body), token=token)

    async def check(self, *, token: str | None = _DEFAULT, **fields: Any) -> httpx.Response:
        return await self.post(PATHS["check"], _drop_none({**CHECK, **fields}), token=token)

    async def deduct(self, *, token: str | None = _DEFAULT, **fields: Any) -> httpx.Response:
        body = {**DEDUCT, "request_id": f"deduct-{uuid.uuid4()}", "external_ref": None, **fields}
        return await self.post(PATHS["deduct"], _drop_none(body), token=token)

    async def restore(self, *, token: str | None = _DEFAULT, **fields: Any) -> httpx.Response:
        body = {
            **RESTORE,
            "request_id": f"restore-{uuid.uuid4()}",
            "external_ref": None,
            "appointment_time": None,
            **fields,
        }
        return await self.post(PATHS["restore"], _drop_none(body), token=token)

    async def balance(self, *, token: str | None = _DEFAULT, **fields: Any) -> int:
        """The usable balance through check-eligibility (amount 1 → balance_after + 1)."""
        body = (await self.check(token=token, **fields)).json()
        if body["reason_code"] == "INSUFFICIENT_CREDITS":
            return int(body["balance_available"])
        assert body["reason_code"] == "eligible", body
        return int(body["balance_after"]) + 1


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    """Fields set to None are left out, so that tests can remove a default field."""
    return {key: value for key, value in body.items() if value is not None}


@pytest.fixture(scope="session", autouse=True)
def _json_logs() -> Iterator[None]:
    # As `kotally serve` logs (JSON lines); structlog's default console renderer would spend
    # seconds pretty-printing the locals of every logged traceback. Undone afterwards.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO")
    yield
    root.handlers[:], root.level = handlers, level
    logging.getLogger("uvicorn.access").disabled = False
    structlog.reset_defaults()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    # Rate limiting off (from `settings`), and no background expiry sweep in tests.
    return settings.model_copy(update={"expire_sweep_interval_seconds": 0})


@pytest.fixture
def world(db: Database, clock: FrozenClock) -> None:
    """loc_1 (a 24 h cancellation window) with the 10-credit pc_package_1 on calendar cal_1."""
    make_location(db, clock, cancellation_window_hours=WINDOW_HOURS)
    make_config(db, clock, calendars=["cal_1"])


TokenFactory = Callable[..., str]


@pytest.fixture
def make_token(
    db: Database, clock: FrozenClock, api_settings: Settings, world: None
) -> TokenFactory:
    def make(
        scopes: Iterable[str] = SCOPES, location_id: str = "loc_1", rate_limit: int | None = None
    ) -> str:
        return make_client(
            db,
            clock,
            location_id,
            scopes,
            secret_key=api_settings.secret_key,
            name=f"test client {uuid.uuid4().hex[:8]}",
            rate_limit=rate_limit,
        ).token

    return make


@pytest.fixture
def token(make_token: TokenFactory) -> str:
    return make_token()


@pytest.fixture
def set_location(db: Database, clock: FrozenClock) -> Callable[..., None]:
    def update(location_id: str = "loc_1", **fields: Any) -> None:
        update_location(db, clock, location_id, **fields)

    return update


def build_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


@pytest.fixture
def app(api_settings: Settings, clock: FrozenClock, db: Database, world: None) -> FastAPI:
    return create_app(api_settings, clock=clock, db=db)


@asynccontextmanager
async def api_on(settings: Settings, clock: FrozenClock, token: str) -> AsyncIterator[Api]:
    """The app on a Database of its own, built from `settings` and disposed of afterwards."""
    database = Database(settings)
    try:
        async with build_client(create_app(settings, clock=clock, db=database)) as http:
            yield Api(http, token)
    finally:
        database.dispose()


@pytest.fixture
async def api(app: FastAPI, token: str, anyio_backend: str) -> AsyncIterator[Api]:
    async with build_client(app) as http:
        yield Api(http, token)
