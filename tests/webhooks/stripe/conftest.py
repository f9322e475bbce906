from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from kotally.db.engine import Database
from kotally.db.models import Entitlement, Grant, LedgerEntry, Location
from kotally.db.models.entitlement import LIVE_STATUSES
from kotally.kit.clock import FrozenClock
from kotally.ledger.verify import verify
from kotally.webhooks.handling import EventContext, Result
from kotally.webhooks.stripe import handle
from tests.factories import Ledger, make_config, make_location


class StripeHooks:
    """Runs Stripe events through the handler, each in its own transaction, as the inbox does."""

    def __init__(self, db: Database, clock: FrozenClock, location_id: str = "loc_1") -> None:
        self.db, self.clock, self.location_id = db, clock, location_id
        self.ledger = Ledger(db, clock, location_id)

    def send(self, event: dict[str, Any], correlation_id: str | None = None) -> Result:
        with self.db.unit_of_work() as session:
            location = session.get_one(Location, self.location_id)
            ctx = EventContext(
                session=session,
                clock=self.clock,
                location=location,
                correlation_id=correlation_id or f"corr-{uuid.uuid4()}",
                settings=self.db.settings,
                event_id=uuid.uuid4(),
                provider="stripe",
                actor="webhook:stripe",
            )
            return handle(ctx, event)

    def lots(self) -> list[Entitlement]:
        with self.db.unit_of_work(write=False) as session:
            stmt = select(Entitlement).order_by(Entitlement.created_at, Entitlement.id)
            return list(session.execute(stmt).scalars())

    def grants(self) -> list[Grant]:
        with self.db.unit_of_work(write=False) as session:
            return list(
                session.execute(select(Grant).order_by(Grant.external_payment_id)).scalars()
            )

    def entries(self, kind: str | None = None) -> list[LedgerEntry]:
        with self.db.unit_of_work(write=False) as session:
            stmt = select(LedgerEntry).order_by(LedgerEntry.id)
            if kind is not None:
                stmt = stmt.where(LedgerEntry.kind == kind)
            return list(session.execute(stmt).scalars())

    def live_credits(self) -> int:
        return sum(lot.credits_remaining for lot in self.lots() if lot.status in LIVE_STATUSES)

    def check(self, contact: str = "cus_1", config: str = "pc_package_1") -> dict[str, Any]:
        return self.ledger.check(external_contact_id=contact, product_config_id=config)

    def clean(self) -> None:
        with self.db.unit_of_work(write=False) as session:
            assert verify(session) == []


@pytest.fixture
def hooks(db: Database, clock: FrozenClock) -> StripeHooks:
    """loc_1; pc_package_1 (10 credits, price_pack); pc_member (membership, 8, price_member)."""
    make_location(db, clock)
    make_config(db, clock, stripe_prices=["price_pack"])
    make_config(
        db, clock, "pc_member", credits=8, type_="membership", stripe_prices=["price_member"]
    )
    return StripeHooks(db, clock)
