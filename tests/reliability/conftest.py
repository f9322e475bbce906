"""The attack suites of reliability/ (issue 5), over ASGI, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from reliability.access import AccessWorld

from kotally.app import create_app
from kotally.auth import service as clients
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.conftest import TEST_SECRET
from tests.factories import make_client, make_config, make_location

LOCATION, OTHER = "loc_rel", "loc_other"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def issue(db: Database, clock: FrozenClock, location: str, scopes: str) -> str:
    return make_client(db, clock, location, scopes.split(","), name="c").token


@pytest.fixture
def world(db: Database, clock: FrozenClock) -> AccessWorld:
    for location in (LOCATION, OTHER):
        make_location(db, clock, location)
        make_config(db, clock, "pc_20", location_id=location, credits=20, calendars=["cal_1"])
    everything = "grant,check,deduct,restore,summary"
    gone = make_client(db, clock, LOCATION, ["check"], name="gone")
    rotated = make_client(db, clock, LOCATION, ["check"], name="rot")
    with db.unit_of_work() as session:
        clients.deactivate(session, str(gone.client.id))
        clients.rotate(session, clock, TEST_SECRET, str(rotated.client.id))
    return AccessWorld(
        location=LOCATION,
        other_location=OTHER,
        token=issue(db, clock, LOCATION, everything),
        other_token=issue(db, clock, OTHER, everything),
        deactivated_token=gone.token,
        rotated_out_token=rotated.token,
        scoped_tokens={s: issue(db, clock, LOCATION, s) for s in ("check", "summary")},
    )


@pytest.fixture
async def client(
    settings: Settings, clock: FrozenClock, db: Database, world: AccessWorld
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, clock=clock, db=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://kotally.test") as c:
        yield c
