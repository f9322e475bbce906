"""Queries of clawback and pause: the lots of a payment, the contacts to lock, the tally."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kotally.db.models import Contact, Entitlement
from kotally.db.models.stripe_charge import StripeChargeClawback
from kotally.db.scoping import scoped
from kotally.kit.ids import new_id


def lock_lots(
    session: Session, location_id: str, lot_ids: Sequence[uuid.UUID]
) -> list[Entitlement]:
    """The lots, after locking their contacts FOR UPDATE in id order.

    The contact row is the lock every mutation of a contact's lots takes (deduct, restore,
    grant, the expiry sweep), so a clawback never races a draw. A fixed order keeps two
    clawbacks spanning the same contacts from deadlocking.
    """
    if not lot_ids:
        return []
    contact_ids = (
        session.execute(
            scoped(select(Entitlement.contact_id), Entitlement, location_id)
            .where(Entitlement.id.in_(lot_ids))
            .distinct()
        )
        .scalars()
        .all()
    )
    session.execute(
        scoped(select(Contact.id), Contact, location_id)
        .where(Contact.id.in_(sorted(contact_ids)))
        .order_by(Contact.id)
        .with_for_update()
    ).all()
    stmt = (
        scoped(select(Entitlement), Entitlement, location_id)
        .where(Entitlement.id.in_(lot_ids))
        .order_by(Entitlement.created_at, Entitlement.id)
    )
    # populate_existing: rows read before the lock may be stale in the identity map.
    return list(session.execute(stmt.execution_options(populate_existing=True)).scalars())


def tally(
    session: Session, location_id: str, reference: str, now: datetime
) -> StripeChargeClawback:
    """The clawback tally of one payment, created empty when new. Caller holds the lock."""
    dialect = session.get_bind().dialect.name
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        builder(StripeChargeClawback)
        .values(
            id=new_id(),
            location_id=location_id,
            charge_id=reference,
            amount_refunded_cents=0,
            credits_target=0,
            credits_clawed_back=0,
            fully_refunded=False,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["location_id", "charge_id"])
    )
    stmt = scoped(select(StripeChargeClawback), StripeChargeClawback, location_id).where(
        StripeChargeClawback.charge_id == reference
    )
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one()
