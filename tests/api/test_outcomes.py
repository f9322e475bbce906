"""api-v2.md §4: every business outcome through HTTP — 200, ok true or false, with its fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from kotally.db.engine import Database
from kotally.kit.clock import FrozenClock
from tests.api.conftest import Api
from tests.factories import make_config, update_config

pytestmark = pytest.mark.anyio

SELECTION = ("check", "deduct", "restore")


def outcome(response: httpx.Response, reason_code: str) -> dict[str, object]:
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    assert body["reason_code"] == reason_code, body
    assert body["ok"] is reason_code.islower()
    if not body["ok"]:
        assert isinstance(body.get("message", ""), str)
    return body


async def call(api: Api, endpoint: str, **fields: object) -> httpx.Response:
    method: Callable[..., object] = getattr(api, endpoint)
    return await method(**fields)  # type: ignore[no-any-return, misc]


# --- grants ---------------------------------------------------------------------------------------


async def test_grant_applied(api: Api) -> None:
    body = outcome(await api.grant(), "grant_applied")
    assert (body["credits_granted"], body["balance_after"]) == (10, 10)


async def test_second_grant_adds_a_lot(api: Api) -> None:
    first = outcome(await api.grant(), "grant_applied")
    second = outcome(await api.grant(), "grant_applied")
    assert second["balance_after"] == 20
    assert second["entitlement_id"] != first["entitlement_id"]
    assert second["contact_id"] == first["contact_id"]


async def test_grant_already_applied(api: Api) -> None:
    first = outcome(await api.grant(external_payment_id="pay_1"), "grant_applied")
    await api.deduct(amount=3)
    again = outcome(await api.grant(external_payment_id="pay_1"), "grant_already_applied")
    assert again["entitlement_id"] == first["entitlement_id"]
    assert again["contact_id"] == first["contact_id"]
    assert again["credits_granted"] == 10
    assert again["balance_after"] == 7  # today's balance
    assert await api.balance() == 7


async def test_grant_config_not_found(api: Api) -> None:
    outcome(await api.grant(product_config_id="pc_unknown"), "CONFIG_NOT_FOUND")
    assert (await api.check()).json()["reason_code"] == "NO_ENTITLEMENT"


async def test_grant_of_a_deactivated_config(api: Api, db: Database, clock: FrozenClock) -> None:
    update_config(db, clock, active=False)
    outcome(await api.grant(), "CONFIG_NOT_FOUND")


async def test_grant_by_external_contact_id_serves_both_ids(api: Api) -> None:
    outcome(await api.grant(ghl_contact_id="ghl_9", external_contact_id="ext_9"), "grant_applied")
    assert await api.balance(ghl_contact_id="ext_9") == 10
    assert await api.balance(ghl_contact_id="ghl_9") == 10
    assert await api.balance(ghl_contact_id=None, external_contact_id="ghl_9") == 10


async def test_grant_with_expiry(api: Api, db: Database, clock: FrozenClock) -> None:
    make_config(db, clock, "pc_30_days", expiry_days=30)
    await api.grant(product_config_id="pc_30_days", paid_at="2026-04-10T00:00:00.000Z")
    clock.advance(timedelta(days=23))  # 2026-05-09: 1 day before expiry
    assert await api.balance(product_config_id="pc_30_days") == 10
    clock.advance(timedelta(days=1))
    body = outcome(await api.check(product_config_id="pc_30_days"), "NO_ENTITLEMENT")
    assert "balance_after" not in body


# --- the failure codes of check, deduct and restore (§4.5) ------------------------------------


@pytest.mark.parametrize("endpoint", ["grant", *SELECTION])
async def test_billing_suspended(
    api: Api, set_location: Callable[..., None], endpoint: str
) -> None:
    await api.grant()
    set_location(billing_status="suspended")
    outcome(await call(api, endpoint), "BILLING_SUSPENDED")
    set_location(billing_status="active")
    assert await api.balance() == 10


async def test_billing_suspended_comes_first(api: Api, set_location: Callable[..., None]) -> None:
    set_location(billing_status="suspended")
    outcome(await api.deduct(product_config_id="pc_unknown", amount=5), "BILLING_SUSPENDED")


async def test_trialing_billing_works(api: Api, set_location: Callable[..., None]) -> None:
    set_location(billing_status="trialing")
    outcome(await api.grant(), "grant_applied")
    outcome(await api.deduct(), "deducted")


@pytest.mark.parametrize("endpoint", SELECTION)
async def test_config_not_found_by_id(api: Api, endpoint: str) -> None:
    await api.grant()
    outcome(await call(api, endpoint, product_config_id="pc_unknown"), "CONFIG_NOT_FOUND")


@pytest.mark.parametrize("endpoint", SELECTION)
async def test_config_not_found_by_calendar(api: Api, endpoint: str) -> None:
    await api.grant()
    response = await call(api, endpoint, product_config_id=None, calendar_id="cal_unlinked")
    outcome(response, "CONFIG_NOT_FOUND")


async def test_config_not_found_before_no_entitlement(api: Api) -> None:
    response = await api.check(ghl_contact_id="nobody", product_config_id="pc_unknown")
    outcome(response, "CONFIG_NOT_FOUND")


async def test_config_of_another_location_is_not_found(
    api: Api, db: Database, clock: FrozenClock
) -> None:
    from tests.factories import make_location

    make_location(db, clock, "loc_2")
    make_config(db, clock, "pc_only_in_loc_2", location_id="loc_2")
    outcome(await api.grant(product_config_id="pc_only_in_loc_2"), "CONFIG_NOT_FOUND")


@pytest.mark.parametrize("endpoint", SELECTION)
async def test_service_family_mismatch_with_both_selectors(
    api: Api, db: Database, clock: FrozenClock, endpoint: str
) -> None:
    make_config(db, clock, "pc_other", calendars=["cal_other"])
    await api.grant()
    response = await call(api, endpoint, calendar_id="cal_other")
    outcome(response, "SERVICE_FAMILY_MISMATCH")


@pytest.mark.parametrize("endpoint", SELECTION)
async def test_service_family_mismatch_by_calendar_alone(
    api: Api, db: Database, clock: FrozenClock, endpoint: str
) -> None:
    make_config(db, clock, "pc_other", calendars=["cal_other"])
    await api.grant()  # credits on pc_package_1 (cal_1) only
    response = await call(api, endpoint, product_config_id=None, calendar_id="cal_other")
    outcome(response, "SERVICE_FAMILY_MISMATCH")


async def test_service_family_mismatch_before_no_entitlement(
    api: Api, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_other", calendars=["cal_other"])
    response = await api.check(ghl_contact_id="nobody", calendar_id="cal_other")
    outcome(response, "SERVICE_FAMILY_MISMATCH")


async def test_selection_by_matching_calendar(api: Api) -> None:
    await api.grant()
    body = outcome(await api.deduct(product_config_id=None, calendar_id="cal_1"), "deducted")
    assert body["balance_after"] == 9
    both = await api.deduct(calendar_id="cal_1")
    assert outcome(both, "deducted")["balance_after"] == 8


@pytest.mark.parametrize("endpoint", SELECTION)
async def test_no_entitlement_for_an_unknown_contact(api: Api, endpoint: str) -> None:
    await api.grant()
    outcome(await call(api, endpoint, ghl_contact_id="ghl_stranger"), "NO_ENTITLEMENT")


@pytest.mark.parametrize("endpoint", SELECTION)
async def test_no_entitlement_for_the_selection(
    api: Api, db: Database, clock: FrozenClock, endpoint: str
) -> None:
    make_config(db, clock, "pc_other", calendars=["cal_other"])
    await api.grant(product_config_id="pc_other")
    outcome(await call(api, endpoint), "NO_ENTITLEMENT")


@pytest.mark.parametrize("endpoint", ["check", "deduct"])
async def test_insufficient_credits(api: Api, endpoint: str) -> None:
    await api.grant()
    body = outcome(await call(api, endpoint, amount=11), "INSUFFICIENT_CREDITS")
    assert body["balance_available"] == 10
    assert await api.balance() == 10


async def test_insufficient_credits_at_zero(api: Api) -> None:
    await api.grant()
    outcome(await api.deduct(amount=10), "deducted")
    body = outcome(await api.deduct(), "INSUFFICIENT_CREDITS")
    assert body["balance_available"] == 0


async def test_deduct_spans_lots(api: Api, clock: FrozenClock) -> None:
    first = outcome(await api.grant(), "grant_applied")
    clock.advance(timedelta(minutes=1))  # the older lot is drawn on first (ledger.md)
    second = outcome(await api.grant(), "grant_applied")
    body = outcome(await api.deduct(amount=15), "deducted")
    assert body["balance_after"] == 5
    assert body["entitlement_id"] == first["entitlement_id"]
    assert body["consumed"] == [
        {"entitlement_id": first["entitlement_id"], "amount": 10},
        {"entitlement_id": second["entitlement_id"], "amount": 5},
    ]


async def test_cancellation_window_expired(api: Api) -> None:
    # The clock stands at 2026-04-16T00:00Z; loc_1's window is 24 h.
    await api.grant()
    await api.deduct(external_ref="b1")
    response = await api.restore(external_ref="b1", appointment_time="2026-04-16T23:59:59.999Z")
    outcome(response, "CANCELLATION_WINDOW_EXPIRED")
    assert await api.balance() == 9


async def test_cancellation_window_edge_is_allowed(api: Api) -> None:
    await api.grant()
    await api.deduct(external_ref="b1")
    response = await api.restore(external_ref="b1", appointment_time="2026-04-17T00:00:00.000Z")
    assert outcome(response, "restored")["balance_after"] == 10


async def test_cancellation_window_from_the_recorded_appointment(api: Api) -> None:
    await api.grant()
    await api.deduct(external_ref="b1", appointment_time="2026-04-16T12:00:00.000Z")
    outcome(await api.restore(external_ref="b1"), "CANCELLATION_WINDOW_EXPIRED")


async def test_cancellation_window_before_nothing_to_restore(api: Api) -> None:
    await api.grant()
    await api.deduct(external_ref="b1")
    response = await api.restore(
        external_ref="b1", amount=5, appointment_time="2026-04-16T06:00:00.000Z"
    )
    outcome(response, "CANCELLATION_WINDOW_EXPIRED")


async def test_no_window_on_the_location(api: Api, set_location: Callable[..., None]) -> None:
    set_location(cancellation_window_hours=None)
    await api.grant()
    await api.deduct(external_ref="b1")
    response = await api.restore(external_ref="b1", appointment_time="2026-04-15T00:00:00.000Z")
    outcome(response, "restored")


async def test_nothing_to_restore_above_what_was_deducted(api: Api) -> None:
    await api.grant()
    await api.deduct(external_ref="b1", amount=2)
    body = outcome(await api.restore(external_ref="b1", amount=3), "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 2
    assert await api.balance() == 8


async def test_nothing_to_restore_twice(api: Api) -> None:
    await api.grant()
    await api.deduct(external_ref="b1")
    outcome(await api.restore(external_ref="b1"), "restored")
    body = outcome(await api.restore(external_ref="b1"), "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 0
    assert await api.balance() == 10


async def test_nothing_to_restore_for_an_unknown_ref(api: Api) -> None:
    await api.grant()
    await api.deduct(external_ref="b1")
    body = outcome(await api.restore(external_ref="b_unknown"), "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 0


async def test_nothing_to_restore_without_ref_on_a_full_lot(api: Api) -> None:
    await api.grant()
    body = outcome(await api.restore(), "NOTHING_TO_RESTORE")
    assert body["credits_restorable"] == 0


async def test_restore_without_ref_fills_room(api: Api) -> None:
    await api.grant()
    await api.deduct(amount=3)
    assert outcome(await api.restore(amount=3), "restored")["balance_after"] == 10


async def test_entitlement_expired(api: Api, db: Database, clock: FrozenClock) -> None:
    make_config(db, clock, "pc_30_days", expiry_days=30)
    await api.grant(product_config_id="pc_30_days")
    await api.deduct(product_config_id="pc_30_days", external_ref="b1")
    clock.advance(timedelta(days=31))
    response = await api.restore(product_config_id="pc_30_days", external_ref="b1")
    outcome(response, "ENTITLEMENT_EXPIRED")


async def test_restore_no_entitlement_when_never_had_one(api: Api) -> None:
    await api.grant(ghl_contact_id="someone_else")
    outcome(await api.restore(external_ref="b1"), "NO_ENTITLEMENT")
