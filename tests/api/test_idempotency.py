"""api-v2.md §5 through HTTP: one request_id, one outcome, forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from kotally.config import Settings
from kotally.db.engine import Database
from kotally.db.models import Entitlement, IdempotencyRecord, LedgerEntry
from kotally.idempotency import repository
from kotally.kit.clock import FrozenClock
from tests.api.conftest import DEDUCT, PATHS, Api, TokenFactory, api_on
from tests.factories import make_config, make_location

pytestmark = pytest.mark.anyio


def is_replay(response: httpx.Response) -> bool:
    return response.headers.get("idempotent-replayed") == "true"


def assert_conflict(response: httpx.Response, fields: list[str]) -> None:
    assert response.status_code == 409
    body = response.json()
    assert body["reason_code"] == "IDEMPOTENCY_KEY_REUSED"
    assert body["conflicting_fields"] == fields


def ledger_entries(db: Database) -> int:
    with db.unit_of_work(write=False) as session:
        return int(session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one())


@pytest.mark.parametrize("endpoint", ["grant", "deduct", "restore"])
async def test_replay_returns_the_stored_answer(api: Api, endpoint: str) -> None:
    await api.grant()
    await api.deduct(external_ref="b1")
    fields = {"request_id": "k1", "external_ref": "b1"}
    if endpoint == "grant":
        fields["external_payment_id"] = "pay_k1"
    call = getattr(api, endpoint)
    first = await call(**fields)
    assert first.status_code == 200
    assert first.json()["ok"] is True
    assert not is_replay(first)
    replay = await call(**fields)
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert is_replay(replay)
    assert replay.headers["x-correlation-id"] == first.headers["x-correlation-id"]


async def test_replay_does_not_apply_again(api: Api, db: Database) -> None:
    await api.grant()
    for _ in range(3):
        response = await api.deduct(request_id="k1", amount=2)
        assert response.json()["balance_after"] == 8
    assert await api.balance() == 8
    assert ledger_entries(db) == 2  # the grant and one deduct


async def test_replay_is_the_original_even_after_the_balance_changed(api: Api) -> None:
    await api.grant()
    first = await api.deduct(request_id="k1")
    await api.deduct(amount=4)
    replay = await api.deduct(request_id="k1")
    assert replay.json()["balance_after"] == 9 == first.json()["balance_after"]
    assert await api.balance() == 5


async def test_failure_is_stored_and_replayed(api: Api) -> None:
    await api.grant()
    first = await api.deduct(request_id="k1", amount=11)
    assert first.json()["reason_code"] == "INSUFFICIENT_CREDITS"
    await api.grant()  # now 20 credits: enough, but the key has its answer
    replay = await api.deduct(request_id="k1", amount=11)
    assert replay.json() == first.json()
    assert is_replay(replay)
    fresh = await api.deduct(request_id="k2", amount=11)
    assert fresh.json()["reason_code"] == "deducted"
    assert fresh.json()["balance_after"] == 9


async def test_no_entitlement_is_stored(api: Api) -> None:
    first = await api.deduct(request_id="k1")
    assert first.json()["reason_code"] == "NO_ENTITLEMENT"
    await api.grant()
    replay = await api.deduct(request_id="k1")
    assert replay.json()["reason_code"] == "NO_ENTITLEMENT"
    assert is_replay(replay)


@pytest.mark.parametrize("endpoint", ["grant", "deduct", "restore"])
async def test_billing_suspended_is_not_stored(
    api: Api, set_location: Callable[..., None], endpoint: str
) -> None:
    await api.grant()
    await api.deduct(external_ref="b1")
    set_location(billing_status="suspended")
    fields = {"request_id": "k1", "external_ref": "b1"}
    if endpoint == "grant":
        fields["external_payment_id"] = "pay_k1"
    call = getattr(api, endpoint)
    suspended = await call(**fields)
    assert suspended.json()["reason_code"] == "BILLING_SUSPENDED"
    set_location(billing_status="active")
    response = await call(**fields)
    assert response.json()["ok"] is True
    assert not is_replay(response)


async def test_billing_suspended_leaves_no_record(
    api: Api, db: Database, set_location: Callable[..., None]
) -> None:
    set_location(billing_status="suspended")
    await api.deduct(request_id="k1")
    with db.unit_of_work(write=False) as session:
        assert session.execute(select(IdempotencyRecord)).first() is None


async def test_defaults_are_applied_before_comparing(api: Api) -> None:
    await api.grant()
    body = {key: value for key, value in DEDUCT.items() if key != "amount"}
    first = await api.post(PATHS["deduct"], {**body, "request_id": "k1"})
    assert first.json()["reason_code"] == "deducted"
    replay = await api.post(PATHS["deduct"], {**body, "request_id": "k1", "amount": 1})
    assert replay.json() == first.json()
    assert is_replay(replay)
    assert await api.balance() == 9


async def test_grant_defaults_are_applied_before_comparing(api: Api) -> None:
    first = await api.grant(request_id="k1", external_payment_id="pay_1")
    replay = await api.grant(
        request_id="k1",
        external_payment_id="pay_1",
        provider="automation",
        event_type="payment_confirmed",
    )
    assert replay.json() == first.json()
    assert is_replay(replay)


async def test_different_payload_is_a_conflict(api: Api) -> None:
    await api.grant()
    await api.deduct(request_id="k1")
    assert_conflict(await api.deduct(request_id="k1", amount=2), ["amount"])
    assert await api.balance() == 9


async def test_conflict_lists_every_differing_field(api: Api) -> None:
    await api.grant()
    await api.deduct(request_id="k1", external_ref="b1")
    response = await api.deduct(
        request_id="k1", amount=2, external_ref="b2", appointment_time="2026-05-01T10:00:00Z"
    )
    assert_conflict(response, ["amount", "appointment_time", "external_ref"])


async def test_same_key_on_another_endpoint_is_a_conflict(api: Api) -> None:
    await api.grant()
    await api.deduct(request_id="k1", external_ref="b1")
    response = await api.restore(request_id="k1", external_ref="b1")
    assert response.status_code == 409
    assert response.json()["conflicting_fields"][0] == "endpoint"
    assert await api.balance() == 9


async def test_keys_are_shared_by_grants_and_deducts(api: Api) -> None:
    await api.grant(request_id="k1")
    response = await api.deduct(request_id="k1")
    assert response.status_code == 409
    assert "endpoint" in response.json()["conflicting_fields"]


async def test_conflict_is_not_stored(api: Api) -> None:
    await api.grant()
    await api.deduct(request_id="k1")
    assert (await api.deduct(request_id="k1", amount=2)).status_code == 409
    replay = await api.deduct(request_id="k1")
    assert is_replay(replay)
    assert replay.json()["reason_code"] == "deducted"


async def test_keys_are_scoped_to_the_location(
    api: Api, db: Database, clock: FrozenClock, make_token: TokenFactory
) -> None:
    make_location(db, clock, "loc_2")
    make_config(db, clock, location_id="loc_2")
    await api.grant(request_id="shared-key")
    other = await api.grant(
        request_id="shared-key", location_id="loc_2", token=make_token(location_id="loc_2")
    )
    assert other.json()["reason_code"] == "grant_applied"
    assert not is_replay(other)


async def test_keys_are_shared_by_the_clients_of_a_location(
    api: Api, make_token: TokenFactory
) -> None:
    await api.grant()
    first = await api.deduct(request_id="k1")
    replay = await api.deduct(request_id="k1", token=make_token(scopes=["deduct"]))
    assert replay.json() == first.json()
    assert is_replay(replay)


async def test_keys_are_kept(api: Api, clock: FrozenClock) -> None:
    await api.grant()
    first = await api.deduct(request_id="k1")
    clock.advance(timedelta(days=3 * 365))
    replay = await api.deduct(request_id="k1")
    assert replay.json() == first.json()
    assert is_replay(replay)


async def test_grant_deduplicated_by_payment_under_another_key(api: Api) -> None:
    first = await api.grant(request_id="k1", external_payment_id="pay_1")
    second = await api.grant(request_id="k2", external_payment_id="pay_1")
    assert second.json()["reason_code"] == "grant_already_applied"
    assert not is_replay(second)
    assert second.json()["entitlement_id"] == first.json()["entitlement_id"]
    assert await api.balance() == 10


async def test_concurrent_duplicate_deducts_apply_once(api: Api, db: Database) -> None:
    await api.grant()
    responses = await asyncio.gather(*(api.deduct(request_id="k-dup") for _ in range(20)))
    answered = [r for r in responses if r.status_code == 200]
    in_progress = [r for r in responses if r.status_code == 409]
    assert len(answered) + len(in_progress) == 20
    assert all(r.json()["reason_code"] == "REQUEST_IN_PROGRESS" for r in in_progress)
    assert len([r for r in answered if not is_replay(r)]) == 1
    assert len({r.text for r in answered}) == 1
    assert answered[0].json()["balance_after"] == 9
    assert await api.balance() == 9
    assert ledger_entries(db) == 2


async def test_concurrent_duplicate_grants_apply_once(api: Api, db: Database) -> None:
    responses = await asyncio.gather(
        *(api.grant(request_id="k-grant", external_payment_id="pay_1") for _ in range(20))
    )
    answered = [r for r in responses if r.status_code == 200]
    assert {r.json()["reason_code"] for r in answered} == {"grant_applied"}
    assert len({r.json()["entitlement_id"] for r in answered}) == 1
    assert await api.balance() == 10
    with db.unit_of_work(write=False) as session:
        lots = session.execute(select(func.count()).select_from(Entitlement)).scalar_one()
    assert lots == 1


async def test_concurrent_grants_of_one_payment_under_different_keys(api: Api) -> None:
    responses = await asyncio.gather(
        *(api.grant(request_id=f"k-{i}", external_payment_id="pay_1") for i in range(10))
    )
    codes = sorted(r.json()["reason_code"] for r in responses)
    assert codes == ["grant_already_applied"] * 9 + ["grant_applied"]
    assert await api.balance() == 10


async def test_concurrent_deducts_never_overdraw(api: Api) -> None:
    await api.grant()
    responses = await asyncio.gather(*(api.deduct() for _ in range(25)))
    codes = [r.json()["reason_code"] for r in responses]
    assert codes.count("deducted") == 10
    assert codes.count("INSUFFICIENT_CREDITS") == 15
    assert await api.balance() == 0


@pytest.fixture
async def short_lock_api(
    api_settings: Settings, clock: FrozenClock, token: str, anyio_backend: str
) -> AsyncIterator[Api]:
    """The app with a 0.5 s lock wait, on its own engine."""
    settings = api_settings.model_copy(update={"db_lock_timeout_seconds": 0.5})
    async with api_on(settings, clock, token) as api:
        yield api


async def test_request_in_progress(short_lock_api: Api, db: Database, clock: FrozenClock) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite serialises writers at BEGIN: a second claim cannot overlap a first")
    await short_lock_api.grant()
    # Another request claimed the key and is still running: its transaction is open.
    with db.unit_of_work() as session:
        claimed = repository.claim(
            session,
            location_id="loc_1",
            request_id="k-running",
            endpoint="deduct",
            fingerprint="f" * 64,
            payload={},
            now=clock.now(),
        )
        assert claimed is not None
        response = await short_lock_api.deduct(request_id="k-running")
        assert response.status_code == 409
        assert response.json()["reason_code"] == "REQUEST_IN_PROGRESS"
        session.rollback()  # the first request failed: nothing was kept for the key
    retried = await short_lock_api.deduct(request_id="k-running")
    assert retried.json()["reason_code"] == "deducted"
    assert await short_lock_api.balance() == 9
