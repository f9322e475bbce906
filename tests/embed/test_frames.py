"""Who may frame what: /embed and its static files by GHL's origins only; all else DENY."""

from __future__ import annotations

import httpx
import pytest

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.embed.frames import DEFAULT_FRAME_ANCESTORS, parse_frame_ancestors
from kotally.kit.clock import FrozenClock
from tests.embed.conftest import BASE_URL, Embed, build
from tests.factories import Ledger

pytestmark = pytest.mark.anyio

GHL_ORIGINS = {
    "https://app.gohighlevel.com",
    "https://*.gohighlevel.com",
    "https://app.leadconnectorhq.com",
    "https://*.leadconnectorhq.com",
}
PAGES = {
    "/embed": "text/html",
    "/embed/static/embed.js": "text/javascript",
    "/embed/static/embed.css": "text/css",
}


def _directives(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    parts = [part.split() for part in policy.split(";") if part.strip()]
    return {part[0]: part[1:] for part in parts}


@pytest.mark.parametrize("path", list(PAGES))
async def test_the_page_may_be_framed_by_ghl_only(embed: Embed, path: str) -> None:
    response = await embed.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(PAGES[path])
    assert "x-frame-options" not in response.headers
    assert set(_directives(response)["frame-ancestors"]) == GHL_ORIGINS


async def test_the_page_loads_only_its_own_code(embed: Embed) -> None:
    response = await embed.get("/embed")
    policy = _directives(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert '<script src="embed/static/embed.js" defer></script>' in response.text
    assert '<label class="label" for="q">Search contacts</label>' in response.text
    script = (await embed.get("/embed/static/embed.js")).text
    assert 'postMessage({ message: "REQUEST_USER_DATA" }, "*")' in script
    assert "REQUEST_USER_DATA_RESPONSE" in script
    assert "localStorage" not in script
    assert "document.cookie" not in script


@pytest.mark.parametrize(
    "path",
    [
        "/embed/session",
        "/embed/api/contacts",
        "/embed/static/nope.js",
        "/embed/static/../service.py",
        "/embed/",
        "/health",
        "/api/v2/contacts/x/summary?location_id=loc_1",
        "/no/such/page",
    ],
)
async def test_everything_else_keeps_deny(embed: Embed, path: str) -> None:
    response = await embed.get(path)  # Embed.request checks X-Frame-Options: DENY
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors" not in response.headers.get("content-security-policy", "")


async def test_an_unknown_static_file_is_404(embed: Embed) -> None:
    response = await embed.get("/embed/static/embed.html")
    assert response.status_code == 404
    assert response.json()["reason_code"] == "ROUTE_NOT_FOUND"


async def test_the_setting_replaces_the_default(
    embed_settings: Settings, clock: FrozenClock, db: Database, ledger: Ledger
) -> None:
    settings = Settings(
        database_url=embed_settings.database_url,
        embed_frame_ancestors="  https://app.mystudio.example   https://*.agency.example:8443 ",
    )
    app = build(settings.model_copy(update={"expire_sweep_interval_seconds": 0}), clock, db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as h:
        response = await Embed(h).get("/embed")
    assert _directives(response)["frame-ancestors"] == [
        "https://app.mystudio.example",
        "https://*.agency.example:8443",
    ]


def test_the_default_is_ghls_app_origins() -> None:
    assert set(Settings().embed_frame_ancestors.split()) == GHL_ORIGINS
    assert parse_frame_ancestors(DEFAULT_FRAME_ANCESTORS) == DEFAULT_FRAME_ANCESTORS


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "*",
        "https://*",
        "app.gohighlevel.com",
        "https://app.gohighlevel.com/path",
        "https://app.gohighlevel.com;script-src *",
        "https://app.gohighlevel.com, https://x.example",
        "'self'",
        "'none'",
        "javascript://x",
        "https://a.*.example",
        "https://app.gohighlevel.com:99999x",
        " ".join(f"https://h{i}.example" for i in range(33)),
    ],
)
def test_invalid_frame_ancestors_are_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOTALLY_EMBED_FRAME_ANCESTORS", value)
    with pytest.raises(ValueError, match="embed_frame_ancestors"):
        Settings()


def test_the_shared_secret_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOTALLY_GHL_APP_SHARED_SECRET", "from-env")
    secret = Settings().ghl_app_shared_secret
    assert secret is not None
    assert secret.get_secret_value() == "from-env"
    assert "from-env" not in repr(Settings())
