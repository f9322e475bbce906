"""The clawback and pause operations of the engine, called directly."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from kotally.db.engine import Database
from kotally.db.models import Location
from kotally.idempotency.service import Reply
from kotally.kit.clock import FrozenClock
from kotally.ledger.clawback import ClawbackRequest, clawback, target_credits
from kotally.ledger.context import LedgerContext
from kotally.ledger.expiry import sweep
from kotally.ledger.pause import PauseRequest, pause, resume
from kotally.ledger.verify import verify
from tests.factories import Ledger, lot, make_config, studio


def run_in(db: Database, clock: FrozenClock, op: Callable[[LedgerContext], Reply]) -> Reply:
    with db.unit_of_work() as session:
        location = session.get_one(Location, "loc_1")
        return op(LedgerContext(session, clock, location, str(uuid.uuid4()), "test"))


@pytest.fixture
def ledger(db: Database, clock: FrozenClock) -> Ledger:
    return studio(db, clock)


def _claw(
    db: Database,
    clock: FrozenClock,
    lots: list[str],
    refunded: int,
    amount: int = 100,
    *,
    full: bool = False,
    request_id: str | None = None,
    reference: str = "ch_1",
) -> Reply:
    req = ClawbackRequest(
        request_id=request_id or f"claw-{reference}-{refunded}",
        reference=reference,
        lot_ids=tuple(uuid.UUID(i) for i in lots),
        refunded_cents=refunded,
        amount_cents=amount,
        full=full,
    )
    return run_in(db, clock, lambda ctx: clawback(ctx, req))


def _pause(db: Database, clock: FrozenClock, lots: list[str], *, undo: bool = False) -> Reply:
    req = PauseRequest(
        f"dispute-{'resume' if undo else 'pause'}", "dp_1", tuple(uuid.UUID(i) for i in lots)
    )
    return run_in(db, clock, lambda ctx: (resume if undo else pause)(ctx, req))


def _clean(db: Database) -> None:
    with db.unit_of_work(write=False) as session:
        assert verify(session) == []


@pytest.mark.parametrize(
    ("granted", "refunded", "amount", "full", "expected"),
    [
        (10, 30, 100, False, 3),
        (10, 33, 100, False, 3),
        (10, 99, 100, False, 9),
        (10, 100, 100, False, 10),
        (10, 150, 100, False, 10),
        (10, 0, 100, False, 0),
        (10, 0, 0, False, 0),
        (10, 0, 0, True, 10),
        (3, 1, 3, False, 1),
    ],
)
def test_target_rounds_down_and_full_takes_all(
    granted: int, refunded: int, amount: int, full: bool, expected: int
) -> None:
    assert target_credits(granted, refunded, amount, full) == expected


def test_partial_clawback_voids_and_keeps_the_lot_live(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    lot_id = ledger.grant()["entitlement_id"]
    body = _claw(db, clock, [lot_id], 30).body
    assert (body["reason_code"], body["credits_clawed_back"]) == ("credits_clawed_back", 3)
    assert (lot(db, lot_id).status, lot(db, lot_id).credits_remaining) == ("active", 7)
    assert ledger.check(amount=7)["reason_code"] == "eligible"
    _clean(db)


def test_replayed_request_id_applies_once(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    lot_id = ledger.grant()["entitlement_id"]
    first = _claw(db, clock, [lot_id], 50, request_id="same")
    again = _claw(db, clock, [lot_id], 50, request_id="same")
    assert again.replayed
    assert again.body == first.body
    assert lot(db, lot_id).credits_remaining == 5


def test_cumulative_across_request_ids(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    lot_id = ledger.grant()["entitlement_id"]
    # Each under its own request_id: the tally, not the key, keeps 60 % from taking twice.
    refunds = enumerate((30, 60, 60, 100))
    taken = [
        _claw(db, clock, [lot_id], r, request_id=f"r{i}").body["credits_clawed_back"]
        for i, r in refunds
    ]
    assert taken == [3, 3, 0, 4]
    assert lot(db, lot_id).credits_remaining == 0
    assert lot(db, lot_id).status == "exhausted"  # 100 % as a partial figure: not voided
    _clean(db)


def test_never_below_zero_and_the_rest_is_shortfall(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    lot_id = ledger.grant()["entitlement_id"]
    ledger.deduct(amount=9)
    body = _claw(db, clock, [lot_id], 50).body
    assert (body["credits_clawed_back"], body["credits_shortfall"]) == (1, 4)
    full = _claw(db, clock, [lot_id], 100, full=True).body
    assert (full["reason_code"], full["credits_clawed_back"], full["credits_shortfall"]) == (
        "credits_voided",
        0,
        9,
    )
    assert (lot(db, lot_id).status, lot(db, lot_id).credits_remaining) == ("voided", 0)
    _clean(db)


def test_full_clawback_spans_lots_of_one_reference(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    lots = [
        ledger.grant()["entitlement_id"],
        ledger.grant(product_config_id="pc_other")["entitlement_id"],
    ]
    body = _claw(db, clock, lots, 100, full=True).body
    assert body["credits_clawed_back"] == 15
    assert {lot(db, i).status for i in lots} == {"voided"}
    _clean(db)


def test_other_references_keep_their_own_tally(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    a, b = ledger.grant()["entitlement_id"], ledger.grant()["entitlement_id"]
    assert _claw(db, clock, [a], 50, reference="ch_a").body["credits_clawed_back"] == 5
    assert _claw(db, clock, [b], 50, reference="ch_b").body["credits_clawed_back"] == 5
    assert [lot(db, a).credits_remaining, lot(db, b).credits_remaining] == [5, 5]


def test_partial_skips_an_expired_lot_full_voids_it(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_short", credits=4, expiry_days=1)
    lot_id = ledger.grant(product_config_id="pc_short")["entitlement_id"]
    clock.advance(timedelta(days=2))  # past expiry, not swept yet
    assert _claw(db, clock, [lot_id], 50).body["credits_clawed_back"] == 0
    assert _claw(db, clock, [lot_id], 100, full=True).body["credits_clawed_back"] == 4
    assert lot(db, lot_id).status == "voided"
    assert sweep(db, clock).lots_expired == 0
    _clean(db)


def test_pause_hides_the_lot_and_resume_shows_it(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    lot_id = ledger.grant()["entitlement_id"]
    assert _pause(db, clock, [lot_id]).body["credits_paused"] == 10
    assert lot(db, lot_id).status == "paused"
    assert ledger.check()["reason_code"] == "NO_ENTITLEMENT"
    assert ledger.deduct()["reason_code"] == "NO_ENTITLEMENT"
    assert ledger.restore(amount=1)["reason_code"] != "restored"
    assert _pause(db, clock, [lot_id], undo=True).body["credits_resumed"] == 10
    assert lot(db, lot_id).status == "active"
    assert ledger.deduct()["reason_code"] == "deducted"
    _clean(db)


def test_a_paused_lot_is_not_swept_and_expires_after_resume(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_short", credits=4, expiry_days=1)
    lot_id = ledger.grant(product_config_id="pc_short")["entitlement_id"]
    _pause(db, clock, [lot_id])
    clock.advance(timedelta(days=2))
    assert sweep(db, clock).lots_expired == 0
    _pause(db, clock, [lot_id], undo=True)
    assert sweep(db, clock).lots_expired == 1
    assert lot(db, lot_id).status == "expired"
    _clean(db)


def test_resume_leaves_a_voided_lot_voided(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    lot_id = ledger.grant()["entitlement_id"]
    _pause(db, clock, [lot_id])
    _claw(db, clock, [lot_id], 100, full=True)
    assert _pause(db, clock, [lot_id], undo=True).body["entitlement_ids"] == []
    assert lot(db, lot_id).status == "voided"
    _clean(db)
