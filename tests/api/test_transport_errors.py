"""api-v2.md §2: the transport-level statuses 400, 404, 405, 413, 415, 500 and 503."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from kotally.ledger import pg_api, sqlite_ops
from tests.api.conftest import CHECK, DEDUCT, GRANT, PATHS, SUMMARY, Api, api_on

pytestmark = pytest.mark.anyio

LIMIT = 64 * 1024
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"",
        b"[1, 2]",
        b'[{"location_id": "loc_1"}]',
        b'"a string"',
        b"null",
        b"42",
        b"true",
        b'{"location_id": "loc_1"',
        b"{'location_id': 'loc_1'}",
        b'{"location_id": "loc_1", "location_id": "loc_2"}',
        b'{"location_id": "loc_1", "metadata": {"a": 1, "a": 2}}',
        b'{"location_id": "loc_\xff\xfe1"}',
        b"\xef\xbb\xbf{}",
        b"[" * 30_000 + b"]" * 30_000,
    ],
    ids=[
        "text",
        "empty",
        "array",
        "array-of-object",
        "string",
        "null",
        "number",
        "bool",
        "truncated",
        "single-quotes",
        "duplicate-key",
        "nested-duplicate-key",
        "invalid-utf8",
        "utf8-bom",
        "deeply-nested",
    ],
)
async def test_invalid_json(api: Api, content: bytes) -> None:
    response = await api.post(PATHS["deduct"], content=content, headers=JSON)
    assert response.status_code == 400
    assert response.json()["reason_code"] == "INVALID_JSON"


@pytest.mark.parametrize("endpoint", list(PATHS))
async def test_invalid_json_on_every_post(api: Api, endpoint: str) -> None:
    response = await api.post(PATHS[endpoint], content=b"[]", headers=JSON)
    assert response.status_code == 400
    assert response.json()["reason_code"] == "INVALID_JSON"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/api/v2/nope"),
        ("POST", "/api/v2/entitlements/deducts"),
        ("POST", "/api/v2/entitlements"),
        ("POST", "/api/v1/grants"),
        ("POST", "/api/v2/grants/extra"),
        ("GET", "/api/v2/contacts"),
        ("POST", "/api/v2/grants/"),
        ("POST", "/api/v2/entitlements/deduct/"),
        ("GET", "/api/v2/contacts/c/summary/?location_id=loc_1"),
        ("GET", "/healthz/"),
    ],
)
async def test_route_not_found(api: Api, method: str, path: str) -> None:
    response = await api.request(method, path)
    assert response.status_code == 404
    assert response.json()["reason_code"] == "ROUTE_NOT_FOUND"


@pytest.mark.parametrize("path", list(PATHS.values()))
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_method_not_allowed(api: Api, method: str, path: str) -> None:
    response = await api.request(method, path)
    assert response.status_code == 405
    assert response.json()["reason_code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_method_not_allowed_on_health(api: Api, method: str) -> None:
    response = await api.request(method, "/healthz")
    assert response.status_code == 405
    assert response.json()["reason_code"] == "METHOD_NOT_ALLOWED"


def padded(size: int) -> bytes:
    """A valid grant body of exactly `size` bytes (the padding is an ignored extra field)."""
    body = {**GRANT, "padding": ""}
    fill = size - len(json.dumps(body).encode())
    return json.dumps({**body, "padding": "x" * fill}).encode()


async def test_body_at_the_limit_is_accepted(api: Api) -> None:
    content = padded(LIMIT)
    assert len(content) == LIMIT
    response = await api.post(PATHS["grant"], content=content, headers=JSON)
    assert response.status_code == 200
    assert response.json()["reason_code"] == "grant_applied"


async def test_payload_too_large_by_content_length(api: Api) -> None:
    content = padded(LIMIT + 1)
    response = await api.post(PATHS["grant"], content=content, headers=JSON)
    assert response.status_code == 413
    assert response.json()["reason_code"] == "PAYLOAD_TOO_LARGE"
    assert (await api.check()).json()["reason_code"] == "NO_ENTITLEMENT"  # nothing applied


async def test_payload_too_large_chunked(api: Api) -> None:
    content = padded(LIMIT * 4)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 4096):
            yield content[start : start + 4096]

    response = await api.post(PATHS["grant"], content=chunks(), headers=JSON)  # type: ignore[arg-type]
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["reason_code"] == "PAYLOAD_TOO_LARGE"


async def test_chunked_body_within_the_limit_is_accepted(api: Api) -> None:
    content = json.dumps(GRANT).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 7):
            yield content[start : start + 7]

    response = await api.post(PATHS["grant"], content=chunks(), headers=JSON)  # type: ignore[arg-type]
    assert response.json()["reason_code"] == "grant_applied"


async def test_payload_too_large_even_when_invalid_json(api: Api) -> None:
    response = await api.post(PATHS["deduct"], content=b"x" * (LIMIT + 1), headers=JSON)
    assert response.status_code == 413


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "text/json",
        "",
    ],
)
async def test_unsupported_media_type(api: Api, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await api.post(PATHS["check"], content=json.dumps(CHECK), headers=headers)
    assert response.status_code == 415
    assert response.json()["reason_code"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json "]
)
async def test_json_media_type_variants_are_accepted(api: Api, content_type: str) -> None:
    response = await api.post(
        PATHS["check"], content=json.dumps(CHECK), headers={"Content-Type": content_type}
    )
    assert response.status_code == 200


async def test_unexpected_error_is_an_enveloped_500(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError('SELECT secret FROM api_clients; File "/x.py", line 1')

    monkeypatch.setattr(pg_api, "check", boom)  # PostgreSQL's check (ledger/pg_api.py)
    monkeypatch.setattr(sqlite_ops, "check", boom)  # SQLite's (ledger/sqlite_api.py)
    response = await api.post(PATHS["check"], CHECK)  # the client checks headers and leaks
    assert response.status_code == 500
    assert response.json()["reason_code"] == "INTERNAL_ERROR"
    assert "secret" not in response.text


# PostgreSQL: the API's deduct is one statement that commits as it ends, so the error is raised
# inside it, after its ledger entry was written.
_FAIL_AFTER_ENTRY = (
    "CREATE FUNCTION test_fail_after_entry() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'after the ledger entry was written'; END $$",
    "CREATE TRIGGER test_fail_after_entry AFTER INSERT ON ledger_entries "
    "FOR EACH ROW EXECUTE FUNCTION test_fail_after_entry()",
)
_UNDO_FAIL_AFTER_ENTRY = (
    "DROP TRIGGER test_fail_after_entry ON ledger_entries",
    "DROP FUNCTION test_fail_after_entry()",
)


def _run_sql(db: Database, statements: tuple[str, ...]) -> None:
    with db.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


async def test_unexpected_error_in_a_write_applies_nothing(
    api: Api, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.grant()
    calls = 0

    def failing_after(original: Any) -> Any:
        """`original` does its work, then the request fails before it commits."""

        def fail(*args: object, **kwargs: object) -> None:
            nonlocal calls
            calls += 1
            original(*args, **kwargs)
            raise RuntimeError("after the ledger entry was written")

        return fail

    # SQLite's deduct is its raw statements (sqlite_ops.deduct): they do the whole deduct, then
    # the error; PostgreSQL's fails inside its one statement.
    if db.dialect == "sqlite":
        monkeypatch.setattr(sqlite_ops, "deduct", failing_after(sqlite_ops.deduct))
    else:
        _run_sql(db, _FAIL_AFTER_ENTRY)
        calls = 1
    try:
        response = await api.deduct(request_id="fails-mid-way")
    finally:
        monkeypatch.undo()
        if db.dialect == "postgresql":
            _run_sql(db, _UNDO_FAIL_AFTER_ENTRY)
    assert response.status_code == 500
    assert calls == 1
    assert await api.balance() == 10
    # Not stored: the key can be used again and now does its work.
    retried = await api.deduct(request_id="fails-mid-way")
    assert retried.json()["reason_code"] == "deducted"
    assert "idempotent-replayed" not in retried.headers


async def test_client_hanging_up_mid_body_is_no_500(
    app: FastAPI, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A client gone before its body arrived: nothing applied, nothing answered, no error logged."""
    body = json.dumps({**DEDUCT, "request_id": "hung-up"}).encode()
    messages = iter(
        [
            {"type": "http.request", "body": body[:10], "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATHS["deduct"],
        "raw_path": PATHS["deduct"].encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", f"Bearer {api.token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("kotally.test", 80),
        "state": {},
    }
    await api.grant()
    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)
    assert [m for m in sent if m["type"] == "http.response.start"] == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await api.balance() == 10
    retried = await api.deduct(request_id="hung-up")
    assert retried.json()["reason_code"] == "deducted"


def unreachable_url(database_url: str, tmp_path: Path) -> str:
    if make_url(database_url).get_backend_name() == "sqlite":
        return f"sqlite:///{tmp_path}/no/such/dir/kotally.db"
    return "postgresql://postgres@127.0.0.1:1/kotally"


@pytest.fixture
async def unavailable_api(
    api_settings: Settings, clock: FrozenClock, token: str, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[Api]:
    settings = api_settings.model_copy(
        update={"database_url": unreachable_url(api_settings.database_url, tmp_path)}
    )
    async with api_on(settings, clock, token) as api:
        yield api


@pytest.mark.parametrize("path", ["deduct", "check", "summary"])
async def test_database_unreachable_is_503(unavailable_api: Api, path: str) -> None:
    if path == "summary":
        response = await unavailable_api.get(SUMMARY)
    else:
        response = await unavailable_api.post(PATHS[path], DEDUCT if path == "deduct" else CHECK)
    assert response.status_code == 503
    assert response.json()["reason_code"] == "SERVICE_UNAVAILABLE"


async def test_readyz_is_503_when_the_database_is_unreachable(unavailable_api: Api) -> None:
    response = await unavailable_api.get("/readyz", token=None)
    assert response.status_code == 503
    assert response.json()["reason_code"] == "SERVICE_UNAVAILABLE"
    alive = await unavailable_api.get("/healthz", token=None)
    assert alive.status_code == 200
