"""`kotally demo`: the published examples' world (loc_1, a 10-credit pc_package_1), idempotently."""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kotally.admin import repository as admin_repo
from kotally.admin import service as admin_users
from kotally.auth import service as clients
from kotally.auth.scopes import SCOPES
from kotally.configs import repository as configs_repo
from kotally.configs import service as configs
from kotally.db.models import ApiClient, Location
from kotally.kit.clock import Clock

DEMO_LOCATION = "loc_1"
DEMO_CONFIG = "pc_package_1"
DEMO_CALENDAR = "cal_demo_1"
DEMO_CLIENT_NAME = "demo (all scopes)"
DEMO_ADMIN_EMAIL = "demo@kotally.local"

PUBLISHED_EXAMPLES: list[tuple[str, str, dict[str, object] | None]] = [
    (
        "POST",
        "/api/v2/grants",
        {
            "location_id": "loc_1",
            "request_id": "grant_req_123",
            "external_payment_id": "payment_123",
            "ghl_contact_id": "ghl_contact_123",
            "product_config_id": "pc_package_1",
            "amount_cents": 9900,
            "currency": "USD",
            "paid_at": "2026-04-16T00:00:00.000Z",
        },
    ),
    (
        "POST",
        "/api/v2/entitlements/check-eligibility",
        {
            "location_id": "loc_1",
            "ghl_contact_id": "ghl_contact_123",
            "product_config_id": "pc_package_1",
            "amount": 1,
        },
    ),
    (
        "POST",
        "/api/v2/entitlements/deduct",
        {
            "location_id": "loc_1",
            "request_id": "booking-123-deduct",
            "ghl_contact_id": "ghl_contact_123",
            "product_config_id": "pc_package_1",
            "amount": 1,
            "external_ref": "booking_123",
        },
    ),
    (
        "POST",
        "/api/v2/entitlements/restore",
        {
            "location_id": "loc_1",
            "request_id": "booking-123-restore",
            "ghl_contact_id": "ghl_contact_123",
            "product_config_id": "pc_package_1",
            "amount": 1,
            "external_ref": "booking_123",
            "appointment_time": "2026-05-01T10:00:00.000Z",
        },
    ),
    ("GET", "/api/v2/contacts/ghl_contact_123/summary?location_id=loc_1", None),
]


@dataclass(frozen=True)
class DemoWorld:
    location_created: bool
    config_created: bool
    client_id: str
    token: str
    admin_email: str
    admin_password: str


def ensure_demo(session: Session, clock: Clock, secret_key: str) -> DemoWorld:
    """Create what is missing; the demo client's token is rotated so it can be shown again."""
    location_created = session.get(Location, DEMO_LOCATION) is None
    if location_created:
        now = clock.now()
        session.add(
            Location(
                id=DEMO_LOCATION,
                name="Demo Studio",
                timezone="UTC",
                billing_status="active",
                cancellation_window_hours=None,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
    config_created = configs_repo.get(session, DEMO_LOCATION, DEMO_CONFIG) is None
    if config_created:
        configs.create(
            session,
            clock,
            location_id=DEMO_LOCATION,
            config_id=DEMO_CONFIG,
            name="10-class pack",
            type_="package",
            credits=10,
            calendars=[DEMO_CALENDAR],
        )
    existing = (
        session.execute(
            select(ApiClient).where(
                ApiClient.location_id == DEMO_LOCATION,
                ApiClient.name == DEMO_CLIENT_NAME,
                ApiClient.active.is_(True),
            )
        )
        .scalars()
        .first()
    )
    if existing is None:
        issued = clients.create(
            session,
            clock,
            secret_key,
            location_id=DEMO_LOCATION,
            name=DEMO_CLIENT_NAME,
            scopes=SCOPES,
        )
    else:
        issued = clients.rotate(session, clock, secret_key, str(existing.id))
    password = ensure_demo_admin(session, clock)
    return DemoWorld(
        location_created,
        config_created,
        str(issued.client.id),
        issued.token,
        DEMO_ADMIN_EMAIL,
        password,
    )


def ensure_demo_admin(session: Session, clock: Clock) -> str:
    """The demo owner, with a fresh random password on every run (printed, like the token)."""
    password = secrets.token_urlsafe(12)
    if admin_repo.user_by_email(session, DEMO_ADMIN_EMAIL) is None:
        admin_users.create(
            session, clock, email=DEMO_ADMIN_EMAIL, role="owner", password=password, actor="demo"
        )
    else:
        admin_users.reset_password(session, clock, DEMO_ADMIN_EMAIL, password, actor="demo")
    return password


def curl_commands(base_url: str, token: str) -> list[str]:
    lines = []
    for method, path, body in PUBLISHED_EXAMPLES:
        parts = ["curl", "-s"]
        if method != "GET":
            parts += ["-X", method]
        parts += [base_url.rstrip("/") + path, "-H", f"Authorization: Bearer {token}"]
        if body is not None:
            parts += [
                "-H",
                "Content-Type: application/json",
                "-d",
                json.dumps(body, separators=(",", ":")),
            ]
        lines.append(" ".join(shlex.quote(p) for p in parts))
    return lines
