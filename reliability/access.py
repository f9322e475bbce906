"""6. Access: every endpoint x every way in that must fail, and no answer with another location's data.

Shared by the live suite and tests/reliability (ASGI). The endpoints come from the served OpenAPI
description, so routes added later (the contact reads) are covered without editing this file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from reliability.load import Answer, Figures, check_envelope

SCOPE_OF = {
    "/api/v2/grants": "grant",
    "/api/v2/entitlements/check-eligibility": "check",
    "/api/v2/entitlements/deduct": "deduct",
    "/api/v2/entitlements/restore": "restore",
}


@dataclass
class AccessWorld:
    location: str
    other_location: str
    token: str  # all scopes, `location`
    other_token: str  # all scopes, `other_location`
    deactivated_token: str
    rotated_out_token: str
    scoped_tokens: dict[str, str]  # scope -> a token of `location` with only that scope
    contact: str = "acc-c1"
    secrets: set[str] = field(default_factory=set)  # ids of `location` data


def _scope(path: str) -> str:
    return SCOPE_OF.get(path, "summary")


def _body(path: str, location: str, contact: str) -> dict[str, Any]:
    rid = f"acc-{uuid.uuid4()}"
    body: dict[str, Any] = {
        "location_id": location,
        "external_contact_id": contact,
        "product_config_id": "pc_20",
    }
    if path != "/api/v2/entitlements/check-eligibility":
        body["request_id"] = rid
    if path == "/api/v2/grants":
        body["external_payment_id"] = f"pay-{rid}"
    return body


async def endpoints(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    schema = (await client.get("/openapi.json")).json()
    found = []
    for path, item in schema["paths"].items():
        if path.startswith("/api/v2"):
            found.extend((method.upper(), path) for method in item if method in ("get", "post"))
    return sorted(found)


async def _send(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    authorization: str | None,
    location: str,
    contact: str,
) -> Answer:
    headers = {} if authorization is None else {"Authorization": authorization}
    if method == "POST":
        response = await client.post(path, json=_body(path, location, contact), headers=headers)
    else:
        url = path.replace("{id}", contact)
        response = await client.get(url, params={"location_id": location}, headers=headers)
    return Answer.of(response)


async def seed(client: httpx.AsyncClient, world: AccessWorld) -> None:
    """Data in `location` whose ids must never reach another location's caller."""
    auth = {"Authorization": f"Bearer {world.token}"}
    grant = await client.post(
        "/api/v2/grants", json=_body("/api/v2/grants", world.location, world.contact), headers=auth
    )
    body = grant.json()
    world.secrets |= {body["contact_id"], body["entitlement_id"]}
    deduct = _body("/api/v2/entitlements/deduct", world.location, world.contact)
    await client.post(
        "/api/v2/entitlements/deduct",
        json={**deduct, "external_ref": "acc-booking-secret"},
        headers=auth,
    )
    world.secrets.add("acc-booking-secret")


async def run_matrix(client: httpx.AsyncClient, world: AccessWorld, figures: Figures) -> None:
    await seed(client, world)
    routes = await endpoints(client)
    if len(routes) < 4:
        figures.fail(f"only {len(routes)} API routes in the OpenAPI description")
    valid_parts = world.token.split("_")
    for method, path in routes:
        scope = _scope(path)
        lacking = next(t for s, t in world.scoped_tokens.items() if s != scope)
        rejected: list[tuple[str, str | None, int, str]] = [
            ("no token", None, 401, "UNAUTHORIZED"),
            ("bare scheme", "Bearer", 401, "UNAUTHORIZED"),
            ("garbage", "Bearer garbage", 401, "UNAUTHORIZED"),
            ("wrong prefix", "Bearer " + "_".join(["ktlx", *valid_parts[1:]]), 401, "UNAUTHORIZED"),
            ("no prefix", "Bearer " + "_".join(valid_parts[1:]), 401, "UNAUTHORIZED"),
            ("other scheme", f"Token {world.token}", 401, "UNAUTHORIZED"),
            ("basic auth", "Basic dXNlcjpwYXNz", 401, "UNAUTHORIZED"),
            (
                "forged secret",
                f"Bearer {'_'.join([*valid_parts[:2], str(uuid.uuid4())])}",
                401,
                "UNAUTHORIZED",
            ),
            ("unknown client", f"Bearer ktly_{uuid.uuid4()}_{uuid.uuid4()}", 401, "UNAUTHORIZED"),
            ("upper-case token", f"Bearer {world.token.upper()}", 401, "UNAUTHORIZED"),
            ("token twice", f"Bearer {world.token} {world.token}", 401, "UNAUTHORIZED"),
            ("deactivated", f"Bearer {world.deactivated_token}", 401, "UNAUTHORIZED"),
            ("rotated out", f"Bearer {world.rotated_out_token}", 401, "UNAUTHORIZED"),
            ("another location's token", f"Bearer {world.other_token}", 403, "LOCATION_MISMATCH"),
            ("token without the scope", f"Bearer {lacking}", 403, "MISSING_SCOPE"),
        ]
        for name, authorization, status, reason in rejected:
            figures.requests += 1
            answer = await _send(client, method, path, authorization, world.location, world.contact)
            check_envelope(answer, figures)
            if (answer.status, answer.reason) != (status, reason):
                figures.violate(
                    f"{method} {path} with {name}: HTTP {answer.status} {answer.reason}, expected {status} {reason}"
                )
            if status == 401 and (
                answer.headers is None or answer.headers.get("www-authenticate") != "Bearer"
            ):
                figures.violate(
                    f"{method} {path} with {name}: 401 without WWW-Authenticate: Bearer"
                )
            leaked = [s for s in world.secrets if s in answer.raw.decode("utf-8", "replace")]
            if leaked:
                figures.violate(f"{method} {path} with {name}: the answer carries {leaked}")
        # Another location's token, asking about this location's contact under its own location:
        # answered (200), but from its own data only.
        contact_uuid = next(iter(sorted(world.secrets - {"acc-booking-secret"})))
        for contact in (world.contact, contact_uuid):
            figures.requests += 1
            answer = await _send(
                client, method, path, f"Bearer {world.other_token}", world.other_location, contact
            )
            check_envelope(answer, figures)
            if answer.status != 200:
                figures.fail(
                    f"{method} {path} as the other location: HTTP {answer.status} {answer.reason}"
                )
            leaked = [s for s in world.secrets if s in answer.raw.decode("utf-8", "replace")]
            if leaked:
                figures.violate(
                    f"{method} {path} as the other location: the answer carries {leaked}"
                )
        # And the right token works (the matrix is not passing because everything fails).
        figures.requests += 1
        answer = await _send(
            client, method, path, f"Bearer {world.token}", world.location, world.contact
        )
        check_envelope(answer, figures)
        if answer.status != 200:
            figures.fail(
                f"{method} {path} with the valid token: HTTP {answer.status} {answer.reason}"
            )
