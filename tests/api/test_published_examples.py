"""api-v2.md §6: the published request examples, sent byte for byte, answer the
documented values."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api, is_uuid

pytestmark = pytest.mark.anyio

GRANT = (
    '{"location_id":"loc_1","request_id":"grant_req_123","external_payment_id":"payment_123",'
    '"ghl_contact_id":"ghl_contact_123","product_config_id":"pc_package_1","amount_cents":9900,'
    '"currency":"USD","paid_at":"2026-04-16T00:00:00.000Z"}'
)
CHECK = (
    '{"location_id":"loc_1","ghl_contact_id":"ghl_contact_123",'
    '"product_config_id":"pc_package_1","amount":1}'
)
DEDUCT = (
    '{"location_id":"loc_1","request_id":"booking-123-deduct","ghl_contact_id":"ghl_contact_123",'
    '"product_config_id":"pc_package_1","amount":1,"external_ref":"booking_123"}'
)
RESTORE = (
    '{"location_id":"loc_1","request_id":"booking-123-restore",'
    '"ghl_contact_id":"ghl_contact_123","product_config_id":"pc_package_1","amount":1,'
    '"external_ref":"booking_123","appointment_time":"2026-05-01T10:00:00.000Z"}'
)
JSON = {"Content-Type": "application/json"}


async def test_published_examples_answer_the_documented_values(api: Api) -> None:
    # The clock stands at 2026-04-16T00:00Z: the restore is inside loc_1's 24 h window.
    grant = await api.post("/api/v2/grants", content=GRANT, headers=JSON)
    assert grant.status_code == 200
    granted = grant.json()
    assert granted["ok"] is True
    assert granted["reason_code"] == "grant_applied"
    assert granted["location_id"] == "loc_1"
    assert granted["credits_granted"] == 10
    assert granted["balance_after"] == 10
    assert is_uuid(granted["contact_id"])
    assert is_uuid(granted["entitlement_id"])
    assert is_uuid(granted["correlation_id"])

    check = await api.post("/api/v2/entitlements/check-eligibility", content=CHECK, headers=JSON)
    assert check.status_code == 200
    assert check.json()["ok"] is True
    assert check.json()["reason_code"] == "eligible"
    assert check.json()["balance_after"] == 9

    deduct = await api.post("/api/v2/entitlements/deduct", content=DEDUCT, headers=JSON)
    assert deduct.status_code == 200
    deducted = deduct.json()
    assert deducted["ok"] is True
    assert deducted["reason_code"] == "deducted"
    assert deducted["balance_after"] == 9
    assert deducted["entitlement_id"] == granted["entitlement_id"]
    assert deducted.get(
        "consumed", [{"entitlement_id": granted["entitlement_id"], "amount": 1}]
    ) == [{"entitlement_id": granted["entitlement_id"], "amount": 1}]

    restore = await api.post("/api/v2/entitlements/restore", content=RESTORE, headers=JSON)
    assert restore.status_code == 200
    restored = restore.json()
    assert restored["ok"] is True
    assert restored["reason_code"] == "restored"
    assert restored["balance_after"] == 10
    assert restored["entitlement_id"] == granted["entitlement_id"]
    assert await api.balance() == 10

    summary = await api.get("/api/v2/contacts/ghl_contact_123/summary?location_id=loc_1")
    assert summary.status_code == 200
    loaded = summary.json()
    assert (loaded["ok"], loaded["reason_code"]) == (True, "summary_loaded")
    assert loaded["contact"]["id"] == granted["contact_id"]
    assert loaded["contact"]["ghl_contact_id"] == "ghl_contact_123"
    assert loaded["summary"]["credits_available"] == 10
    assert loaded["summary"]["last_paid_at"] == "2026-04-16T00:00:00.000Z"
    assert loaded["summary"]["lifetime_value_cents"] == 9900
    assert loaded["summary"]["payment_events_count"] == 1


async def test_check_changes_nothing(api: Api) -> None:
    await api.post("/api/v2/grants", content=GRANT, headers=JSON)
    for _ in range(3):
        check = await api.post(
            "/api/v2/entitlements/check-eligibility", content=CHECK, headers=JSON
        )
        assert check.json()["balance_after"] == 9
