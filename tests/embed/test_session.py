"""POST /embed/session: GHL's encrypted user context for a 15-minute read-only token."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from kotally.auth.ratelimit import RateDecision
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.models import EmbedSession
from kotally.embed.crypto import PAYLOAD_CHARS_MAX
from kotally.kit.clock import FrozenClock, isoformat
from kotally.kit.crypto import hash_token
from tests.conftest import TEST_SECRET
from tests.embed.conftest import SHARED_SECRET, Embed, build, check_common, payload, user_context
from tests.embed.cryptojs import encrypt, encrypt_json
from tests.factories import Ledger, rows

pytestmark = pytest.mark.anyio


def _reason(response: httpx.Response, status: int, reason_code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["reason_code"] == reason_code, response.text


async def test_good_handshake(embed: Embed, db: Database, clock: FrozenClock) -> None:
    response = await embed.post_session({"payload": payload()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "ok",
        "reason_code",
        "correlation_id",
        "token",
        "location_id",
        "expires_at",
    }
    assert body["ok"] is True
    assert body["reason_code"] == "embed_session_created"
    assert body["location_id"] == "loc_1"
    assert body["expires_at"] == isoformat(clock.now() + timedelta(minutes=15))
    assert body["token"].startswith("ktle_")
    (row,) = rows(db, EmbedSession)
    assert row.token_hash == hash_token(TEST_SECRET, body["token"])
    assert body["token"] not in row.token_hash
    assert row.location_id == "loc_1"
    assert (row.ghl_user_id, row.ghl_company_id) == ("ghl_user_1", "ghl_company_1")
    assert (row.user_name, row.email, row.role, row.user_type) == (
        "Sam Staff",
        "sam@studio.example",
        "admin",
        "account",
    )
    assert row.created_at == clock.now()


async def test_each_handshake_gets_its_own_token(embed: Embed, db: Database) -> None:
    first, second = await embed.sign_in(), await embed.sign_in()
    assert first != second
    assert len(rows(db, EmbedSession)) == 2


async def test_user_fields_that_are_not_text_are_recorded_as_null(
    embed: Embed, db: Database
) -> None:
    await embed.sign_in(userId=123, email="x" * 400, role=None, userName="a\x00b")
    (row,) = rows(db, EmbedSession)
    assert (row.ghl_user_id, row.email, row.role, row.user_name) == (None, None, None, None)
    assert row.ghl_company_id == "ghl_company_1"


async def test_forged_with_another_secret(embed: Embed, db: Database) -> None:
    forged = encrypt_json(user_context(), "not-the-shared-secret", salt=b"12345678")
    _reason(await embed.post_session({"payload": forged}), 401, "UNAUTHORIZED")
    assert rows(db, EmbedSession) == []


async def test_truncated(embed: Embed) -> None:
    raw = base64.b64decode(payload())
    for cut in (raw[:-16], raw[:-1], raw[:16]):
        truncated = base64.b64encode(cut).decode()
        _reason(await embed.post_session({"payload": truncated}), 401, "UNAUTHORIZED")


async def test_not_base64(embed: Embed) -> None:
    _reason(await embed.post_session({"payload": "%%% not base64 %%%"}), 401, "UNAUTHORIZED")


async def test_no_salted_header(embed: Embed) -> None:
    raw = base64.b64decode(payload())
    headless = base64.b64encode(raw[16:]).decode()
    _reason(await embed.post_session({"payload": headless}), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    "context",
    [
        {"userId": "ghl_user_1", "type": "agency"},  # an agency view has no active location
        {"activeLocation": ""},
        {"activeLocation": None},
        {"activeLocation": 42},
        {"activeLocation": ["loc_1"]},
        {"activeLocation": "loc\n1"},
        {"activeLocation": "l" * 256},
    ],
)
async def test_context_without_a_usable_active_location(
    embed: Embed, context: dict[str, object]
) -> None:
    response = await embed.post_session({"payload": encrypt_json(context, SHARED_SECRET)})
    _reason(response, 401, "UNAUTHORIZED")


async def test_context_that_is_not_an_object(embed: Embed) -> None:
    for text in ("[1]", "null", "not json"):
        response = await embed.post_session({"payload": encrypt(text, SHARED_SECRET)})
        _reason(response, 401, "UNAUTHORIZED")


async def test_unknown_location(embed: Embed, db: Database) -> None:
    response = await embed.post_session({"payload": payload(activeLocation="loc_unknown")})
    _reason(response, 403, "LOCATION_NOT_FOUND")
    assert rows(db, EmbedSession) == []


async def test_no_secret_configured(
    embed_settings: Settings, clock: FrozenClock, db: Database, ledger: Ledger
) -> None:

    for secret in (None, SecretStr("")):
        settings = embed_settings.model_copy(update={"ghl_app_shared_secret": secret})
        transport = httpx.ASGITransport(app=build(settings, clock, db))
        async with httpx.AsyncClient(transport=transport, base_url="http://kotally.test") as h:
            response = await Embed(h).post_session({"payload": payload()})
        _reason(response, 401, "UNAUTHORIZED")
        assert "not set up" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "payload"),
        ({"payload": 12}, "payload"),
        ({"payload": ""}, "payload"),
        ({"payload": None}, "payload"),
        ({"payload": "x" * (PAYLOAD_CHARS_MAX + 1)}, "payload"),
        ({"payload": "abc", "extra": 1}, "extra"),
    ],
)
async def test_body_shape(embed: Embed, body: dict[str, object], field: str) -> None:
    response = await embed.post_session(body)
    _reason(response, 422, "VALIDATION_ERROR")
    assert field in {error["field"] for error in response.json()["errors"]}


async def test_body_transport_errors(embed: Embed) -> None:
    json_headers = {"Content-Type": "application/json"}
    too_big = json.dumps({"payload": "x" * 20_000})
    cases = [
        ({"Content-Type": "text/plain"}, "payload=abc", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (json_headers, "{not json", 400, "INVALID_JSON"),
        (json_headers, "[]", 400, "INVALID_JSON"),
        (json_headers, too_big, 413, "PAYLOAD_TOO_LARGE"),
    ]
    for headers, content, status, reason in cases:
        response = await embed.request("POST", "/embed/session", headers=headers, content=content)
        _reason(response, status, reason)


async def test_get_on_the_session_path_is_405(embed: Embed) -> None:
    response = await embed.request("GET", "/embed/session")
    _reason(response, 405, "METHOD_NOT_ALLOWED")
    check_common(response)


class _Budget:
    """A stand-in for the rate limiter: each key may pass `allowed` times, then is limited."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.hits: list[str] = []

    def hit(self, key: str, rate: int | None) -> RateDecision:
        self.hits.append(key)
        limited = self.hits.count(key) > self.allowed
        return RateDecision(limited, 1, 0, 1 if limited else 0)


async def test_sign_ins_and_reads_are_rate_limited(
    embed_settings: Settings, clock: FrozenClock, db: Database, ledger: Ledger
) -> None:
    app = build(embed_settings, clock, db)
    budget = _Budget(allowed=1)
    app.state.kotally.limiter = budget  # the real buckets refill with wall-clock time
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kotally.test") as h:
        embed = Embed(h)
        token = await embed.sign_in()
        response = await embed.post_session({"payload": payload()})
        _reason(response, 429, "RATE_LIMITED")
        assert response.headers["retry-after"] == "1"
        # Reads count against the session's own bucket, not the sign-in one.
        _reason(await embed.get("/embed/api/contacts", token), 200, "contacts_found")
        _reason(await embed.get("/embed/api/contacts", token), 429, "RATE_LIMITED")
    (session_row,) = rows(db, EmbedSession)
    assert budget.hits == [
        "embed-session:127.0.0.1",
        "embed-session:127.0.0.1",
        f"embed:{session_row.id}",
        f"embed:{session_row.id}",
    ]
