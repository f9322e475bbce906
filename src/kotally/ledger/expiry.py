"""The expiry sweep: an `expire` entry for what was left on each lot past its expires_at."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from kotally.db.engine import Database
from kotally.db.models import Contact, Entitlement, Location
from kotally.db.models.entitlement import LIVE_STATUSES
from kotally.db.scoping import scoped
from kotally.kit.clock import Clock
from kotally.ledger.context import LedgerContext
from kotally.ledger.lots import move

# Contacts handled per pass; each contact is its own short transaction.
SWEEP_BATCH_CONTACTS = 500


@dataclass(frozen=True)
class SweepResult:
    lots_expired: int
    credits_expired: int


def sweep(db: Database, clock: Clock, *, actor: str = "system:expiry") -> SweepResult:
    lots_total = credits_total = 0
    while True:
        due = _due_contacts(db, clock)
        if not due:
            return SweepResult(lots_total, credits_total)
        for location_id, contact_id in due:
            lots, credits = _expire_contact(db, clock, location_id, contact_id, actor)
            lots_total += lots
            credits_total += credits


def _due_contacts(db: Database, clock: Clock) -> list[tuple[str, uuid.UUID]]:
    with db.unit_of_work(write=False) as session:
        stmt = (
            select(Entitlement.location_id, Entitlement.contact_id)
            .where(
                Entitlement.status.in_(LIVE_STATUSES),
                Entitlement.expires_at <= clock.now(),
            )
            .distinct()
            .limit(SWEEP_BATCH_CONTACTS)
        )
        return [(row[0], row[1]) for row in session.execute(stmt)]


def _expire_contact(
    db: Database, clock: Clock, location_id: str, contact_id: uuid.UUID, actor: str
) -> tuple[int, int]:
    with db.unit_of_work() as session:
        # Same lock as deduct and restore, so the sweep never races a draw on this contact.
        session.execute(
            scoped(select(Contact.id), Contact, location_id)
            .where(Contact.id == contact_id)
            .with_for_update()
        )
        location = session.get_one(Location, location_id)
        ctx = LedgerContext(session, clock, location, str(uuid.uuid4()), actor)
        now = clock.now()
        stmt = scoped(select(Entitlement), Entitlement, location_id).where(
            Entitlement.contact_id == contact_id,
            Entitlement.status.in_(LIVE_STATUSES),
            Entitlement.expires_at <= now,
        )
        lots = credits = 0
        for lot in session.execute(stmt).scalars():
            left = lot.credits_remaining
            if left > 0:
                move(ctx, lot, "expire", -left)
            lot.status = "expired"
            lots += 1
            credits += left
        return lots, credits
