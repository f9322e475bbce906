"""Webhook fixtures: the tests' own GHL key pairs, a signer, and the app on a migrated database.

`Signer` is reusable by any webhook test (the Stripe tests sign with the `stripe` package).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from kotally.app import create_app
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.models import WebhookEvent
from kotally.kit.clock import FrozenClock, isoformat
from kotally.ledger.verify import verify
from kotally.webhooks import inbox
from kotally.webhooks.endpoints import provider_of
from tests.factories import Ledger, make_config, make_location

WINDOW_HOURS = 24
CONTACT = "ghl_contact_123"


def _pem(key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class Signer:
    """Signs bodies as GHL does: Ed25519 (X-GHL-Signature) and RSA-SHA256 (X-WH-Signature)."""

    def __init__(self) -> None:
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ed_public_pem = _pem(self.ed.public_key())
        self.rsa_public_pem = _pem(self.rsa.public_key())

    def ed25519(self, body: bytes) -> str:
        return base64.b64encode(self.ed.sign(body)).decode()

    def rsa_sha256(self, body: bytes) -> str:
        signature = self.rsa.sign(body, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()

    def headers(self, body: bytes, scheme: str = "ed25519") -> dict[str, str]:
        if scheme == "ed25519":
            return {"X-GHL-Signature": self.ed25519(body)}
        if scheme == "rsa":
            return {"X-WH-Signature": self.rsa_sha256(body)}
        if scheme == "both":
            return {"X-GHL-Signature": self.ed25519(body), "X-WH-Signature": self.rsa_sha256(body)}
        return {}


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def hook_settings(settings: Settings, signer: Signer) -> Settings:
    return settings.model_copy(
        update={
            "expire_sweep_interval_seconds": 0,
            "ghl_webhook_ed25519_public_key": signer.ed_public_pem,
            # base64 DER, the other accepted form
            "ghl_webhook_rsa_public_key": base64.b64encode(
                signer.rsa.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ).decode(),
        }
    )


def appointment(
    type_: str = "AppointmentCreate",
    appt_id: str = "appt_1",
    status: str = "confirmed",
    *,
    start: datetime,
    updated: datetime,
    contact: str = CONTACT,
    calendar: str = "cal_1",
    location_id: str = "loc_1",
    webhook_id: str | None = None,
) -> dict[str, Any]:
    """An appointment event shaped like GHL's."""
    return {
        "type": type_,
        "locationId": location_id,
        "webhookId": webhook_id or str(uuid.uuid4()),
        "timestamp": isoformat(updated),
        "appointment": {
            "id": appt_id,
            "address": "Studio A",
            "title": "Reformer class",
            "calendarId": calendar,
            "contactId": contact,
            "groupId": "grp_1",
            "appointmentStatus": status,
            "assignedUserId": "user_1",
            "users": ["user_1"],
            "notes": "",
            "source": "booking_widget",
            "startTime": start.isoformat(),
            "endTime": (start + timedelta(hours=1)).isoformat(),
            "dateAdded": isoformat(updated),
            "dateUpdated": isoformat(updated),
        },
    }


class Hooks:
    def __init__(self, db: Database, clock: FrozenClock, settings: Settings, signer: Signer):
        self.db, self.clock, self.signer, self.settings = db, clock, signer, settings
        self.http = TestClient(
            create_app(settings, clock=clock, db=db), raise_server_exceptions=False
        )
        self.ledger = Ledger(db, clock)

    def post(
        self,
        payload: dict[str, Any] | bytes,
        *,
        scheme: str = "ed25519",
        headers: dict[str, str] | None = None,
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = {"Content-Type": "application/json", **self.signer.headers(body, scheme)}
        response = self.http.post(
            "/webhooks/ghl", content=body, headers={**sent, **(headers or {})}
        )
        assert response.status_code != 500, response.text
        assert response.headers["x-correlation-id"]
        assert response.headers["x-content-type-options"] == "nosniff"
        body_json = response.json()
        assert body_json["correlation_id"] == response.headers["x-correlation-id"]
        return response

    def send(self, payload: dict[str, Any] | bytes, **kw: Any) -> dict[str, Any]:
        response = self.post(payload, **kw)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def events(self) -> list[WebhookEvent]:
        with self.db.unit_of_work(write=False) as session:
            stmt = select(WebhookEvent).order_by(WebhookEvent.received_at, WebhookEvent.id)
            return list(session.execute(stmt).scalars())

    def event(self, event_id: str) -> WebhookEvent:
        with self.db.unit_of_work(write=False) as session:
            return session.get_one(WebhookEvent, uuid.UUID(event_id))

    def balance(self, contact: str = CONTACT, config: str = "pc_package_1") -> int:
        body = self.ledger.check(ghl_contact_id=contact, product_config_id=config)
        if body["reason_code"] == "INSUFFICIENT_CREDITS":
            return int(body["balance_available"])
        if body["reason_code"] == "NO_ENTITLEMENT":
            return 0
        assert body["reason_code"] == "eligible", body
        return int(body["balance_after"]) + 1

    def replay(self, event_id: str) -> WebhookEvent:
        return inbox.replay(self.db, self.clock, self.settings, provider_of, uuid.UUID(event_id))

    def clean(self) -> None:
        with self.db.unit_of_work(write=False) as session:
            assert verify(session) == []


@pytest.fixture
def hooks(
    db: Database, clock: FrozenClock, hook_settings: Settings, signer: Signer
) -> Iterator[Hooks]:
    """loc_1 (24 h window), pc_package_1 (10 credits, calendar cal_1, GHL product prod_pack)."""
    make_location(db, clock, cancellation_window_hours=WINDOW_HOURS)
    make_config(db, clock, calendars=["cal_1"], ghl_products=["prod_pack"])
    hooks = Hooks(db, clock, hook_settings, signer)
    yield hooks
    hooks.http.close()
