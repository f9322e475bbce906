"""One request_id, one outcome, forever (api-v2.md §5)."""

from __future__ import annotations

import pytest

from kotally.db.engine import Database
from kotally.db.models import Entitlement, Grant, IdempotencyRecord, LedgerEntry
from kotally.errors import IdempotencyKeyReused
from kotally.kit.clock import FrozenClock
from tests.factories import (
    Ledger,
    make_config,
    make_location,
    rows,
    studio,
    update_location,
)


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    return studio(db, clock)


def _kinds(db: Database) -> list[str]:
    return sorted(e.kind for e in rows(db, LedgerEntry))


def test_replayed_deduct_answers_the_stored_body_and_applies_nothing(
    ledger: Ledger, db: Database
) -> None:
    ledger.grant()
    first = ledger.reply("deduct", request_id="booking-1", amount=2, external_ref="b1")

    again = ledger.reply("deduct", request_id="booking-1", amount=2, external_ref="b1")

    assert (first.replayed, again.replayed) == (False, True)
    assert again.body == first.body
    assert (again.status, again.body["balance_after"]) == (200, 8)
    assert _kinds(db) == ["deduct", "grant"]
    assert ledger.check()["balance_after"] == 7


def test_replayed_restore_applies_nothing(ledger: Ledger, db: Database) -> None:
    ledger.grant()
    ledger.deduct(amount=3, external_ref="b1")
    first = ledger.reply("restore", request_id="cancel-1", external_ref="b1")

    again = ledger.reply("restore", request_id="cancel-1", external_ref="b1")

    assert again.replayed
    assert again.body == first.body
    assert _kinds(db) == ["deduct", "grant", "restore"]
    assert ledger.check(amount=8)["balance_after"] == 0


def test_replayed_grant_applies_nothing(ledger: Ledger, db: Database) -> None:
    first = ledger.reply("grant", request_id="grant-1", external_payment_id="payment_1")

    again = ledger.reply("grant", request_id="grant-1", external_payment_id="payment_1")

    assert again.replayed
    assert again.body == first.body
    assert again.body["reason_code"] == "grant_applied"  # not grant_already_applied
    assert len(rows(db, Entitlement)) == len(rows(db, Grant)) == 1


def test_omitted_amount_equals_amount_one(ledger: Ledger) -> None:
    ledger.grant()
    first = ledger.reply("deduct", request_id="booking-1")

    again = ledger.reply("deduct", request_id="booking-1", amount=1)

    assert again.replayed
    assert again.body == first.body


def test_appointment_time_is_compared_as_an_instant(ledger: Ledger) -> None:
    ledger.grant()
    first = ledger.reply(
        "deduct", request_id="booking-1", appointment_time="2026-05-01T12:00:00+02:00"
    )

    again = ledger.reply(
        "deduct", request_id="booking-1", appointment_time="2026-05-01T10:00:00.000Z"
    )

    assert again.replayed
    assert again.body == first.body


def test_unknown_extra_fields_are_not_part_of_the_payload(ledger: Ledger) -> None:
    ledger.grant()
    first = ledger.reply("deduct", request_id="booking-1")

    again = ledger.reply("deduct", request_id="booking-1", note="ignored")

    assert again.replayed
    assert again.body == first.body


def test_different_payload_is_refused_naming_the_field(ledger: Ledger, db: Database) -> None:
    ledger.grant()
    first = ledger.deduct(request_id="booking-1", amount=2)

    with pytest.raises(IdempotencyKeyReused) as refused:
        ledger.deduct(request_id="booking-1", amount=3)

    assert refused.value.extra["conflicting_fields"] == ["amount"]
    assert (refused.value.status, refused.value.reason_code) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert ledger.check()["balance_after"] == 7
    assert ledger.reply("deduct", request_id="booking-1", amount=2).body == first


def test_conflict_names_every_differing_field(ledger: Ledger) -> None:
    ledger.grant()
    ledger.deduct(request_id="booking-1", external_ref="b1")

    with pytest.raises(IdempotencyKeyReused) as refused:
        ledger.deduct(
            request_id="booking-1",
            product_config_id=None,
            calendar_id="cal_1",
            external_ref="b2",
            appointment_time="2026-05-01T10:00:00Z",
        )

    assert refused.value.extra["conflicting_fields"] == [
        "appointment_time",
        "calendar_id",
        "external_ref",
        "product_config_id",
    ]


def test_same_key_on_another_endpoint_conflicts_on_endpoint(ledger: Ledger, db: Database) -> None:
    ledger.grant()
    ledger.deduct(request_id="booking-1", external_ref="b1")

    with pytest.raises(IdempotencyKeyReused) as refused:
        ledger.restore(request_id="booking-1", external_ref="b1")

    assert refused.value.extra["conflicting_fields"] == ["endpoint"]
    assert _kinds(db) == ["deduct", "grant"]


def test_a_grant_key_reused_on_deduct_conflicts(ledger: Ledger) -> None:
    ledger.grant(request_id="shared-key")

    with pytest.raises(IdempotencyKeyReused) as refused:
        ledger.deduct(request_id="shared-key")

    fields = refused.value.extra["conflicting_fields"]
    assert fields[0] == "endpoint"
    assert "external_payment_id" in fields


def test_a_grant_key_reused_for_another_payment_conflicts(ledger: Ledger, db: Database) -> None:
    ledger.grant(request_id="grant-1", external_payment_id="payment_1")

    with pytest.raises(IdempotencyKeyReused) as refused:
        ledger.grant(request_id="grant-1", external_payment_id="payment_2")

    assert refused.value.extra["conflicting_fields"] == ["external_payment_id"]
    assert len(rows(db, Grant)) == 1


def test_insufficient_credits_stays_the_answer_for_its_key(ledger: Ledger, db: Database) -> None:
    ledger.grant()
    refused = ledger.reply("deduct", request_id="booking-1", amount=15)
    assert refused.body["reason_code"] == "INSUFFICIENT_CREDITS"
    ledger.grant()

    again = ledger.reply("deduct", request_id="booking-1", amount=15)
    fresh = ledger.reply("deduct", request_id="booking-2", amount=15)

    assert again.replayed
    assert again.body == refused.body
    assert again.body["balance_available"] == 10
    assert (fresh.body["reason_code"], fresh.body["balance_after"]) == ("deducted", 5)


def test_no_entitlement_stays_the_answer_for_its_key(ledger: Ledger) -> None:
    refused = ledger.deduct(request_id="booking-1")
    ledger.grant()

    again = ledger.reply("deduct", request_id="booking-1")

    assert again.replayed
    assert (again.body["reason_code"], again.body) == ("NO_ENTITLEMENT", refused)


def test_config_not_found_stays_the_answer_of_a_grant_key(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    refused = ledger.grant(
        request_id="grant-1", external_payment_id="p1", product_config_id="pc_new"
    )
    make_config(db, clock, "pc_new")

    again = ledger.reply(
        "grant", request_id="grant-1", external_payment_id="p1", product_config_id="pc_new"
    )

    assert again.replayed
    assert (again.body["reason_code"], again.body) == ("CONFIG_NOT_FOUND", refused)
    assert rows(db, Grant) == []


def test_a_finished_key_replays_even_while_suspended(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    ledger.grant()
    first = ledger.deduct(request_id="booking-1")
    update_location(db, clock, billing_status="suspended")

    again = ledger.reply("deduct", request_id="booking-1")

    assert again.replayed
    assert again.body == first


def test_every_keyed_outcome_is_stored_once(ledger: Ledger, db: Database) -> None:
    ledger.grant(request_id="grant-1")
    ledger.deduct(request_id="booking-1")
    ledger.deduct(request_id="booking-1")
    ledger.restore(request_id="cancel-1", amount=5)
    ledger.check()

    records = rows(db, IdempotencyRecord)
    assert sorted((r.request_id, r.endpoint, r.state) for r in records) == [
        ("booking-1", "deduct", "completed"),
        ("cancel-1", "restore", "completed"),
        ("grant-1", "grants", "completed"),
    ]


def test_keys_are_per_location(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    make_location(db, clock, "loc_2")
    make_config(db, clock, location_id="loc_2", credits=4)
    elsewhere = Ledger(db, clock, "loc_2")
    ledger.grant()
    elsewhere.grant()

    here = ledger.reply("deduct", request_id="booking-1")
    there = elsewhere.reply("deduct", request_id="booking-1", amount=2)

    assert (here.replayed, there.replayed) == (False, False)
    assert (here.body["balance_after"], there.body["balance_after"]) == (9, 2)
    assert len(rows(db, LedgerEntry, LedgerEntry.kind == "deduct")) == 2
