"""The staff embed on a migrated database: loc_1 (with contacts) and loc_2, and GHL's side of
the handshake (a user context encrypted with the app's shared secret)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from kotally.app import create_app
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.embed.cryptojs import encrypt_json
from tests.factories import Ledger, make_config, make_location, studio

SHARED_SECRET = "ghl-app-shared-secret-for-the-embed-tests"
BASE_URL = "http://kotally.test"
LEAKS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3", "SELECT ", "INSERT ")


def user_context(**fields: Any) -> dict[str, Any]:
    """What GHL encrypts for a staff user of loc_1 (integrations.md field names)."""
    return {
        "userId": "ghl_user_1",
        "companyId": "ghl_company_1",
        "role": "admin",
        "type": "account",
        "activeLocation": "loc_1",
        "userName": "Sam Staff",
        "email": "sam@studio.example",
        **fields,
    }


def payload(secret: str = SHARED_SECRET, **fields: Any) -> str:
    return encrypt_json(user_context(**fields), secret)


def check_common(response: httpx.Response) -> None:
    """Every answer: a correlation id, no internals, and DENY framing except on the page."""
    path = response.request.url.path
    page = path == "/embed" or path.startswith("/embed/static/")
    frameable = page and response.status_code == 200  # an unknown file's 404 is not a page
    assert response.headers.get("x-correlation-id")
    assert response.headers["x-content-type-options"] == "nosniff"
    if frameable:
        assert "x-frame-options" not in response.headers
    else:
        assert response.headers["x-frame-options"] == "DENY"
    for leak in LEAKS:
        assert leak not in response.text, (leak, response.text[:300])
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        assert body["correlation_id"] == response.headers["x-correlation-id"]
        assert body["ok"] is (response.status_code < 400)
        if response.status_code >= 400:
            assert body["reason_code"].isupper()
            assert body["message"]


class Embed:
    """An httpx client for the app, speaking the embed's side of the handshake."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, path, **kwargs)
        check_common(response)
        return response

    async def post_session(self, body: Any) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        return await self.request(
            "POST", "/embed/session", content=json.dumps(body), headers=headers
        )

    async def sign_in(self, **fields: Any) -> str:
        response = await self.post_session({"payload": payload(**fields)})
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    async def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.request("GET", path, headers=headers, **kwargs)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def embed_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "expire_sweep_interval_seconds": 0,
            "ghl_app_shared_secret": SecretStr(SHARED_SECRET),
        }
    )


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    """loc_1 (pc_package_1: 10 credits, pc_other: 5) and loc_2 with a contact of its own."""
    ledger = studio(db, clock)
    make_location(db, clock, "loc_2")
    make_config(db, clock, location_id="loc_2")
    Ledger(db, clock, "loc_2").grant(ghl_contact_id="ghl_other_loc", name="Olive Other")
    return ledger


def build(settings: Settings, clock: FrozenClock, db: Database) -> FastAPI:
    return create_app(settings, clock=clock, db=db)


@pytest.fixture
async def embed(
    embed_settings: Settings, clock: FrozenClock, db: Database, ledger: Ledger, anyio_backend: str
) -> AsyncIterator[Embed]:
    app = build(embed_settings, clock, db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as h:
        yield Embed(h)
