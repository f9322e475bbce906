"""The contact summary's raw implementation equals reads.summary (SQLAlchemy), for any history.

Each comparison runs both in one read-only unit of work, so they read the same snapshot, and
compares keys in order and the type of every value, not only equality.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from kotally.contacts import reads, sqlite_summary
from kotally.db.engine import Database
from kotally.db.models import Entitlement
from kotally.db.types import UTCDateTime
from kotally.kit.clock import FrozenClock
from kotally.kit.ids import parse_uuid
from kotally.ledger.expiry import sweep
from kotally.ledger.sqlite_ops import connection_of
from tests.factories import (
    Ledger,
    adjust_lot,
    make_config,
    make_contact,
    make_location,
    update_config,
)

# kotally_summary (migration 0010), called as the API's kotally_api_summary calls it.
_PG_SUMMARY = text(
    "SELECT kotally_summary(:location_id, :key, CAST(:contact_uuid AS uuid), :now)"
).bindparams(bindparam("now", type_=UTCDateTime))


def raw_summary(
    session: Session, clock: FrozenClock, location_id: str, key: str
) -> dict[str, Any] | None:
    """The raw implementation of the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite_summary.summary(connection_of(session), location_id, key, clock.now())
    params = {
        "location_id": location_id,
        "key": key,
        "contact_uuid": parse_uuid(key),
        "now": clock.now(),
    }
    found: dict[str, Any] | None = session.execute(_PG_SUMMARY, params).scalar_one()
    return found


def _typed(value: Any) -> Any:
    """`value` with its dicts' key order and every leaf's type made part of what is compared."""
    if isinstance(value, dict):
        return [(key, _typed(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value).__name__, value)


def same(db: Database, clock: FrozenClock, key: str, location_id: str = "loc_1") -> Any:
    """Both summaries of the contact `key` names, asserted equal; returns the reference's."""
    with db.unit_of_work(write=False) as session:
        expected = reads.summary(session, clock, location_id, key)
        got = raw_summary(session, clock, location_id, key)
    assert got == expected
    assert _typed(got) == _typed(expected)
    return expected


def _set_status(db: Database, lot_id: str, status: str) -> None:
    with db.unit_of_work() as session:
        session.get_one(Entitlement, uuid.UUID(lot_id)).status = status


def test_unknown_contact_is_none(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    assert same(db, clock, "ghl_contact_123") is None  # no contact yet
    make_location(db, clock, "loc_2")
    make_config(db, clock, location_id="loc_2")
    theirs = Ledger(db, clock, "loc_2").grant()
    ledger.grant(external_contact_id="ext_1")
    for key in ("nobody", "", str(uuid.uuid4()), theirs["contact_id"], "EXT_1"):
        assert same(db, clock, key) is None


def test_a_contact_with_a_grant_only(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    ledger.grant()
    body = same(db, clock, "ghl_contact_123")
    assert body["summary"]["recent_appointments"] == []


def test_a_varied_history(ledger: Ledger, db: Database, clock: FrozenClock) -> None:
    make_config(db, clock, "pc_month", credits=8, type_="membership", expiry_days=30)
    make_config(db, clock, "pc_short", credits=3, expiry_days=1)
    make_config(db, clock, "pc_retired", credits=4)
    contact = {"ghl_contact_id": "ghl_1", "external_contact_id": "ext_1", "email": "m@x.org"}
    by = {"external_contact_id": "ext_1"}
    first = ledger.grant(**contact, amount_cents=9900, currency="USD", paid_at="2026-04-01T10:00Z")
    ledger.grant(
        **contact, product_config_id="pc_month", amount_cents=0, paid_at="2026-05-01T00:00Z"
    )
    clock.advance(timedelta(microseconds=1999))  # shown truncated to the millisecond
    short = ledger.grant(**contact, product_config_id="pc_short")  # no amount, no paid_at
    retired = ledger.grant(**contact, product_config_id="pc_retired", amount_cents=400)
    paused = ledger.grant(**contact, product_config_id="pc_big", amount_cents=1)
    voided = ledger.grant(**contact, amount_cents=2)
    update_config(db, clock, "pc_retired", active=False)
    _set_status(db, paused["entitlement_id"], "paused")
    _set_status(db, voided["entitlement_id"], "voided")
    adjust_lot(db, clock, first, 5)  # above what was granted
    for n, at in enumerate(["2026-05-01T10:00:00.123999Z", "2026-04-10T09:00Z", None, None]):
        clock.advance(timedelta(minutes=1))
        assert ledger.deduct(**by, amount=2, external_ref=f"booking_{n}", appointment_time=at)["ok"]
    assert ledger.restore(**by, amount=1, external_ref="booking_1")["ok"]
    assert ledger.restore(**by, amount=2, external_ref="booking_3")["ok"]
    assert ledger.deduct(**by, amount=1)["ok"]  # no booking
    clock.advance(timedelta(minutes=-2))  # a clock set back: ledger order is not time order
    assert ledger.deduct(**by, amount=1)["ok"]
    clock.advance(timedelta(minutes=2))
    with db.unit_of_work(write=False) as session:
        contact_id = reads.summary(session, clock, "loc_1", "ghl_1")["contact"]["id"]

    keys = ["ghl_1", "ext_1", contact_id, contact_id.upper(), f"urn:uuid:{contact_id}"]
    for key in [*keys, "{" + uuid.UUID(contact_id).hex + "}"]:
        same(db, clock, key)
    clock.set(clock.now().replace(hour=0, minute=0) + timedelta(days=1))  # short's expires_at
    body = same(db, clock, "ghl_1")
    statuses = {lot["id"]: lot["status"] for lot in body["summary"]["entitlements"]}
    assert statuses[short["entitlement_id"]] == "expired"
    assert statuses[retired["entitlement_id"]] == "active"
    clock.advance(timedelta(days=40))  # the membership expires, unswept, then swept
    same(db, clock, "ext_1")
    sweep(db, clock)
    same(db, clock, "ext_1")


def test_contacts_sharing_ids_across_fields_and_locations(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_location(db, clock, "loc_2")
    make_config(db, clock, location_id="loc_2", credits=7)
    theirs = Ledger(db, clock, "loc_2")
    a = ledger.grant(ghl_contact_id="shared", amount_cents=100)
    # Another contact whose external id is the same value (the ledger would match it to `a`).
    make_contact(db, clock, ghl_contact_id="b_ghl", external_contact_id="shared")
    ledger.grant(ghl_contact_id="b_ghl", amount_cents=200, product_config_id="pc_big")
    other = theirs.grant(ghl_contact_id="shared", amount_cents=999)
    theirs.deduct(ghl_contact_id="shared", external_ref="booking_1")
    # A ghl id that is another contact's Kotally id: by uuid first, and only in the location.
    ledger.grant(ghl_contact_id=a["contact_id"], amount_cents=300)
    ledger.grant(ghl_contact_id=other["contact_id"], amount_cents=400)

    assert same(db, clock, "shared")["contact"]["id"] == a["contact_id"]
    assert same(db, clock, "b_ghl")["contact"]["external_contact_id"] == "shared"
    assert same(db, clock, "shared", "loc_2")["contact"]["id"] == other["contact_id"]
    assert same(db, clock, a["contact_id"])["contact"]["id"] == a["contact_id"]
    by_ghl = same(db, clock, other["contact_id"])["contact"]
    assert by_ghl["ghl_contact_id"] == other["contact_id"]
    assert same(db, clock, a["contact_id"], "loc_2") is None


def test_usable_lots_beyond_the_newest_shown(
    ledger: Ledger, db: Database, clock: FrozenClock
) -> None:
    make_config(db, clock, "pc_one", credits=1)
    for _ in range(3):
        ledger.grant(amount_cents=50)  # old lots that stay usable
    old = ledger.grant(product_config_id="pc_big")
    _set_status(db, old["entitlement_id"], "paused")
    clock.advance(timedelta(seconds=1))
    for n in range(reads.LOTS_SHOWN_MAX + 10):  # many created at the same instant: ties on time
        ledger.grant(product_config_id="pc_one", paid_at="2026-04-02T00:00Z" if n % 2 else None)
    ledger.deduct(product_config_id="pc_one", amount=reads.LOTS_SHOWN_MAX + 5)

    body = same(db, clock, "ghl_contact_123")
    lots = body["summary"]["entitlements"]
    assert len(lots) == reads.LOTS_SHOWN_MAX + 3
    assert body["summary"]["credits_available"] == 35
    clock.advance(timedelta(microseconds=1))
    ledger.grant(product_config_id="pc_one")
    same(db, clock, "ghl_contact_123")
