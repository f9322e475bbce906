"""Hardening: security headers everywhere, no internals in a 500, rate limits per client,
refusal to start in production with a weak secret, and no secret in the logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from click.testing import CliRunner
from reliability.access import AccessWorld
from reliability.load import SECURITY_HEADERS, Answer, Figures, check_envelope

from kotally.app import create_app
from kotally.cli import main
from kotally.config import DEFAULT_SECRET_KEY, Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from kotally.ledger import pg_api, sqlite_ops
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.anyio
CHECK = "/api/v2/entitlements/check-eligibility"


def _check_body(world: AccessWorld) -> dict[str, object]:
    return {
        "location_id": world.location,
        "external_contact_id": "x",
        "product_config_id": "pc_20",
    }


@pytest.mark.parametrize(
    ("method", "path", "with_token", "content"),
    [
        ("GET", "/healthz", False, None),
        ("GET", "/openapi.json", False, None),
        ("GET", "/docs", False, None),
        ("GET", "/nope", False, None),
        ("PUT", CHECK, True, None),
        ("POST", CHECK, False, b"{}"),
        ("POST", CHECK, True, b"x" * 70_000),
        ("POST", CHECK, True, b"{"),
        ("POST", CHECK, True, b'{"location_id": 1}'),
    ],
)
async def test_security_headers_on_every_response(
    client: httpx.AsyncClient,
    world: AccessWorld,
    method: str,
    path: str,
    with_token: bool,
    content: bytes | None,
) -> None:
    headers = {"Content-Type": "application/json"}
    if with_token:
        headers["Authorization"] = f"Bearer {world.token}"
    response = await client.request(method, path, headers=headers, content=content)
    for name in SECURITY_HEADERS:
        assert name in response.headers, (name, response.status_code)
    assert "x-correlation-id" in response.headers


async def test_an_unexpected_error_is_a_plain_500_without_internals(
    client: httpx.AsyncClient, world: AccessWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("SELECT secret FROM api_clients -- Traceback")

    monkeypatch.setattr(pg_api, "check", boom)  # PostgreSQL's check (ledger/pg_api.py)
    monkeypatch.setattr(sqlite_ops, "check", boom)  # SQLite's (ledger/sqlite_api.py)
    response = await client.post(
        CHECK, json=_check_body(world), headers={"Authorization": f"Bearer {world.token}"}
    )
    figures = Figures("500", "asgi")
    check_envelope(
        Answer(response.status_code, response.json(), response.headers, response.content), figures
    )
    assert response.status_code == 500
    assert response.json()["reason_code"] == "INTERNAL_ERROR"
    assert figures.violations == 0, figures.notes


async def test_rate_limit_is_per_client(
    settings: Settings, clock: FrozenClock, db: Database, world: AccessWorld
) -> None:
    limited = settings.model_copy(update={"rate_limit_per_second": 2, "rate_limit_burst": 4})
    app = create_app(limited, clock=clock, db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kotally.test") as c:
        statuses = [
            (
                await c.post(
                    CHECK,
                    json=_check_body(world),
                    headers={"Authorization": f"Bearer {world.token}"},
                )
            )
            for _ in range(12)
        ]
        other = await c.post(
            CHECK,
            json=_check_body(world),
            headers={"Authorization": f"Bearer {world.scoped_tokens['check']}"},
        )
    passed = [r for r in statuses if r.status_code == 200]
    refused = [r for r in statuses if r.status_code == 429]
    assert 4 <= len(passed) <= 6  # the burst, plus what 2/s refills while the test runs
    assert refused
    assert all(r.json()["reason_code"] == "RATE_LIMITED" for r in refused)
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert other.status_code == 200


@pytest.mark.parametrize("secret", [None, "", DEFAULT_SECRET_KEY, "short-secret"])
def test_production_refuses_a_default_or_missing_secret(
    secret: str | None, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kotally.config import get_settings

    monkeypatch.setenv("KOTALLY_ENV", "production")
    monkeypatch.setenv("KOTALLY_DATABASE_URL", database_url)
    monkeypatch.delenv("KOTALLY_SECRET_KEY", raising=False)
    if secret is not None:
        monkeypatch.setenv("KOTALLY_SECRET_KEY", secret)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        with pytest.raises(ValueError, match="KOTALLY_SECRET_KEY"):
            create_app(settings)
        result = CliRunner().invoke(main, ["serve", "--port", "1"])
        assert result.exit_code != 0
        assert "KOTALLY_SECRET_KEY" in result.output
    finally:
        get_settings.cache_clear()


async def test_secrets_are_never_logged(
    client: httpx.AsyncClient, world: AccessWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = {"Authorization": f"Bearer {world.token}"}
    await client.post(CHECK, json=_check_body(world), headers=auth)
    await client.post(CHECK, content=b"{", headers={**auth, "Content-Type": "application/json"})
    await client.post(CHECK, json=_check_body(world), headers={"Authorization": "Bearer ktly_x"})
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert world.token not in logged
    assert world.token.rsplit("_", 1)[1] not in logged
    assert TEST_SECRET not in logged
