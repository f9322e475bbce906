"""Hand-written hostile inputs (reliability/hostile.py): never a 5xx, always the envelope."""

from __future__ import annotations

import httpx
import pytest
from reliability.access import AccessWorld
from reliability.hostile import run_cases
from reliability.load import Figures

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.factories import make_config

pytestmark = pytest.mark.anyio


async def test_hostile_inputs_are_refused_cleanly(
    client: httpx.AsyncClient, world: AccessWorld
) -> None:
    auth = {"Authorization": f"Bearer {world.token}"}
    grant = {
        "location_id": world.location,
        "request_id": "h-seed",
        "external_payment_id": "h-seed",
        "external_contact_id": "h-c1",
        "product_config_id": "pc_20",
    }
    assert (await client.post("/api/v2/grants", json=grant, headers=auth)).status_code == 200
    figures = Figures("hostile", "asgi")
    await run_cases(client, world.token, world.location, "h-c1", figures)
    assert figures.notes == []
    assert figures.requests > 100


async def test_paid_at_at_the_end_of_the_calendar_with_an_expiring_config(
    client: httpx.AsyncClient, world: AccessWorld, db: Database, clock: FrozenClock
) -> None:
    """9999-12-31 + expiry_days used to overflow into a 500; the lot now expires at the end."""
    make_config(db, clock, "pc_exp", location_id=world.location, credits=5, expiry_days=30)
    body = {
        "location_id": world.location,
        "request_id": "end-of-time",
        "external_payment_id": "end-of-time",
        "external_contact_id": "h-c2",
        "product_config_id": "pc_exp",
        "paid_at": "9999-12-31T23:59:59.999Z",
    }
    response = await client.post(
        "/api/v2/grants", json=body, headers={"Authorization": f"Bearer {world.token}"}
    )
    assert response.status_code == 200
    assert response.json()["reason_code"] == "grant_applied"
