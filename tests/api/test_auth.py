"""api-v2.md §1-2: bearer tokens (401), scopes (403 MISSING_SCOPE) and locations
(403 LOCATION_MISMATCH)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from kotally.auth import service as clients
from kotally.auth.scopes import SCOPES
from kotally.config import Settings
from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.api.conftest import CHECK, DEDUCT, GRANT, PATHS, RESTORE, Api, TokenFactory
from tests.factories import make_client, make_config, make_location

pytestmark = pytest.mark.anyio

# Fixed ids: parametrized test ids must be the same in every pytest-xdist worker.
U1 = "6f1c2a34-1111-4c2e-9a6b-0123456789ab"
U2 = "0d9e8f7a-2222-4b3c-8d4e-ba9876543210"
BODIES = {"grant": GRANT, "check": CHECK, "deduct": DEDUCT, "restore": RESTORE}


def client_id_of(token: str) -> str:
    return token.removeprefix("ktly_")[:36]


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json()["reason_code"] == "UNAUTHORIZED"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_missing_authorization_header(api: Api) -> None:
    assert_unauthorized(await api.post(PATHS["check"], CHECK, token=None))


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Bearer:", "ktly"])
async def test_wrong_scheme(api: Api, token: str, scheme: str) -> None:
    response = await api.post(
        PATHS["check"], CHECK, token=None, headers={"Authorization": f"{scheme} {token}"}
    )
    assert_unauthorized(response)


@pytest.mark.parametrize(
    "value",
    [
        "Bearer",
        "Bearer ",
        "Bearer abc",
        "Bearer ktly_",
        "Bearer ktly_not-a-uuid_not-a-uuid",
        f"Bearer {U1}_{U2}",
        f"Bearer ktly_{U1}",
        f"Bearer ktly_{U1}_{U2}_extra",
        f"Bearer ktly_{U1.upper()}_{U2}",
        f"Bearer ktly_{U1.replace('-', '')}_{U2.replace('-', '')}",
        f"Bearer ktly_{{{U1}}}_{U2}",
    ],
)
async def test_malformed_token(api: Api, value: str) -> None:
    response = await api.post(PATHS["check"], CHECK, token=None, headers={"Authorization": value})
    assert_unauthorized(response)


async def test_unknown_client(api: Api) -> None:
    response = await api.post(PATHS["check"], CHECK, token=f"ktly_{uuid.uuid4()}_{uuid.uuid4()}")
    assert_unauthorized(response)


async def test_wrong_secret(api: Api, token: str) -> None:
    forged = f"ktly_{client_id_of(token)}_{uuid.uuid4()}"
    assert_unauthorized(await api.post(PATHS["check"], CHECK, token=forged))


async def test_token_hashed_with_another_secret_key_is_rejected(
    api: Api, db: Database, clock: FrozenClock
) -> None:
    other = make_client(db, clock, secret_key="another-secret-key-" + "x" * 32).token
    assert_unauthorized(await api.post(PATHS["check"], CHECK, token=other))


async def test_deactivated_client(api: Api, token: str, db: Database) -> None:
    assert (await api.post(PATHS["check"], CHECK)).status_code == 200
    with db.unit_of_work() as session:
        clients.deactivate(session, client_id_of(token))
    assert_unauthorized(await api.post(PATHS["check"], CHECK))


async def test_rotated_out_token(
    api: Api, token: str, db: Database, clock: FrozenClock, api_settings: Settings
) -> None:
    with db.unit_of_work() as session:
        new = clients.rotate(session, clock, api_settings.secret_key, client_id_of(token)).token
    assert_unauthorized(await api.post(PATHS["check"], CHECK, token=token))
    assert (await api.post(PATHS["check"], CHECK, token=new)).status_code == 200


async def test_every_rejected_token_gets_the_same_answer(
    api: Api, token: str, db: Database
) -> None:
    # No oracle: unknown client, wrong secret and deactivated client are indistinguishable.
    unknown = await api.post(PATHS["check"], CHECK, token=f"ktly_{uuid.uuid4()}_{uuid.uuid4()}")
    wrong = await api.post(
        PATHS["check"], CHECK, token=f"ktly_{client_id_of(token)}_{uuid.uuid4()}"
    )
    with db.unit_of_work() as session:
        clients.deactivate(session, client_id_of(token))
    deactivated = await api.post(PATHS["check"], CHECK)
    messages = {r.json()["message"] for r in (unknown, wrong, deactivated)}
    assert len(messages) == 1


@pytest.mark.parametrize("endpoint", list(PATHS))
async def test_missing_scope(api: Api, make_token: TokenFactory, endpoint: str) -> None:
    token = make_token(scopes=[s for s in SCOPES if s != endpoint])
    response = await api.post(PATHS[endpoint], BODIES[endpoint], token=token)
    assert response.status_code == 403
    assert response.json()["reason_code"] == "MISSING_SCOPE"
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize("endpoint", list(PATHS))
async def test_scope_grants_its_endpoint_only(
    api: Api, make_token: TokenFactory, endpoint: str
) -> None:
    token = make_token(scopes=[endpoint])
    assert (await api.post(PATHS[endpoint], BODIES[endpoint], token=token)).status_code == 200
    for other in PATHS:
        if other != endpoint:
            response = await api.post(PATHS[other], BODIES[other], token=token)
            assert response.json()["reason_code"] == "MISSING_SCOPE"


@pytest.fixture
def second_location(db: Database, clock: FrozenClock) -> None:
    make_location(db, clock, "loc_2")
    make_config(db, clock, location_id="loc_2")


@pytest.mark.parametrize("endpoint", list(PATHS))
@pytest.mark.parametrize("location_id", ["loc_2", "loc_unknown", "LOC_1", "loc_1 "])
async def test_location_mismatch(
    api: Api, second_location: None, endpoint: str, location_id: str
) -> None:
    response = await api.post(PATHS[endpoint], {**BODIES[endpoint], "location_id": location_id})
    assert response.status_code == 403
    assert response.json()["reason_code"] == "LOCATION_MISMATCH"


async def test_location_mismatch_applies_nothing(
    api: Api, second_location: None, make_token: TokenFactory
) -> None:
    other = make_token(location_id="loc_2")
    response = await api.post(PATHS["grant"], GRANT, token=other)
    assert response.json()["reason_code"] == "LOCATION_MISMATCH"
    assert (await api.check()).json()["reason_code"] == "NO_ENTITLEMENT"


async def test_locations_do_not_see_each_other(
    api: Api, second_location: None, make_token: TokenFactory
) -> None:
    # Both locations have a pc_package_1; a contact of loc_1 is unknown in loc_2.
    assert (await api.grant()).json()["reason_code"] == "grant_applied"
    other = make_token(location_id="loc_2")
    response = await api.post(PATHS["check"], {**CHECK, "location_id": "loc_2"}, token=other)
    assert response.json()["reason_code"] == "NO_ENTITLEMENT"


async def test_last_used_is_recorded(api: Api, token: str, db: Database) -> None:
    await api.post(PATHS["check"], CHECK)
    with db.unit_of_work(write=False) as session:
        client = clients.get(session, client_id_of(token))
        assert client.last_used_at is not None
