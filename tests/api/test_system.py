"""Health, readiness, metrics, the OpenAPI description and the docs; headers on every response."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from tests.api.conftest import CHECK, PATHS, SECURITY_HEADERS, Api

pytestmark = pytest.mark.anyio


async def test_healthz(api: Api) -> None:
    response = await api.get("/healthz", token=None)
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["reason_code"]) == (True, "alive")
    assert body["correlation_id"] == response.headers["x-correlation-id"]


async def test_readyz(api: Api) -> None:
    response = await api.get("/readyz", token=None)
    assert response.status_code == 200
    assert (response.json()["ok"], response.json()["reason_code"]) == (True, "ready")


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            samples.append((labels, float(match.group(2))))
    return samples


def served_routes(routes: list[Any], prefix: str = "") -> set[tuple[str, str]]:
    """(path, method) of every API route, through FastAPI's included routers."""
    served = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            served |= served_routes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            served |= {(prefix + route.path, method.lower()) for method in route.methods}
    return served


async def test_metrics_count_requests_by_reason_code(api: Api) -> None:
    await api.grant()
    await api.deduct(amount=11)
    await api.post(PATHS["check"], CHECK, token=None)
    response = await api.get("/metrics", token=None)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE kotally_http_requests_total counter" in text
    counted = {
        (labels["endpoint"], labels["method"], labels["status"], labels["reason_code"])
        for labels, value in metric_samples(text, "kotally_http_requests_total")
        if value >= 1
    }
    assert {
        (PATHS["grant"], "POST", "200", "grant_applied"),
        (PATHS["deduct"], "POST", "200", "INSUFFICIENT_CREDITS"),
        (PATHS["check"], "POST", "401", "UNAUTHORIZED"),
    } <= counted
    assert "kotally_http_request_duration_seconds_bucket" in text


async def test_openapi_describes_every_api_path(api: Api, app: FastAPI) -> None:
    response = await api.get("/openapi.json", token=None)
    assert response.status_code == 200
    schema = response.json()
    served = {
        (path, method)
        for path, method in served_routes(app.routes)
        if path.startswith("/api/v2") and method != "head"
    }
    assert {(path, "post") for path in PATHS.values()} <= served
    described = {
        (path, method)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert served <= described
    assert all(path.startswith("/api/v2") for path, _ in described)
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


async def test_openapi_posts_have_a_request_body_schema(api: Api) -> None:
    schema = (await api.get("/openapi.json", token=None)).json()
    posts = {
        path: operations["post"]
        for path, operations in schema["paths"].items()
        if "post" in operations
    }
    assert set(PATHS.values()) <= set(posts)
    for path, operation in posts.items():
        body = operation["requestBody"]
        assert body["required"] is True
        json_schema = body["content"]["application/json"]["schema"]
        assert "location_id" in json_schema["properties"], path
        assert "location_id" in json_schema["required"], path
        assert operation["security"] == [{"bearerAuth": []}]
        assert "200" in operation["responses"]
        assert "422" in operation["responses"]
    grant = posts[PATHS["grant"]]["requestBody"]["content"]["application/json"]["schema"]
    assert {"request_id", "external_payment_id", "product_config_id"} <= set(grant["required"])


async def test_openapi_responses_describe_the_envelope(api: Api) -> None:
    schema = (await api.get("/openapi.json", token=None)).json()
    deduct = schema["paths"][PATHS["deduct"]]["post"]["responses"]
    assert {"200", "400", "401", "403", "409", "413", "415", "422", "429"} <= set(deduct)
    check = schema["paths"][PATHS["check"]]["post"]["responses"]
    assert "409" not in check  # check takes no request_id


async def test_docs(api: Api) -> None:
    response = await api.get("/docs", token=None)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "openapi.json" in response.text


@pytest.mark.parametrize(
    ("method", "path", "authorized"),
    [
        ("GET", "/healthz", False),
        ("GET", "/readyz", False),
        ("GET", "/metrics", False),
        ("GET", "/openapi.json", False),
        ("GET", "/docs", False),
        ("GET", "/nope", False),
        ("DELETE", PATHS["grant"], False),
        ("POST", PATHS["check"], False),
        ("POST", PATHS["check"], True),
    ],
)
async def test_security_headers_on_every_response(
    api: Api, method: str, path: str, authorized: bool
) -> None:
    response = await api.http.request(
        method,
        path,
        json=CHECK if method == "POST" else None,
        headers={"Authorization": f"Bearer {api.token}"} if authorized else {},
    )
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert response.headers["x-correlation-id"]
    assert "server" not in response.headers or "uvicorn" not in response.headers["server"]
