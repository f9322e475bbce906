"""Every query of the contact reads (api-v2.md §4.6).

Each query is scoped to one location (`scoped`) and one contact. Lists walk an index in their sort
order from a keyset position and stop after `limit` rows, so a page costs its own rows however
long the contact's history is (indexes: migration 0002).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from kotally.db.models import (
    Appointment,
    Contact,
    Entitlement,
    Grant,
    LedgerEntry,
    ProductConfig,
)
from kotally.db.models.appointment import APPOINTMENT_AT
from kotally.db.models.grant import GRANT_AT
from kotally.db.scoping import scoped
from kotally.kit.ids import parse_uuid
from kotally.ledger.repository import live_condition

Ts = TypeVarTuple("Ts")


class Ties(enum.Enum):
    """How rows at exactly the resume time relate to the resume point."""

    BEFORE = "before"  # none of them comes after it
    AFTER = "after"  # all of them come after it


@dataclass(frozen=True)
class Resume:
    """Where a page starts: after the row with sort key (at, tie), in the list's direction."""

    at: datetime
    tie: int | uuid.UUID | Ties


@dataclass(frozen=True)
class LotRow:
    lot: Entitlement
    config: ProductConfig


@dataclass(frozen=True)
class EntryRow:
    entry: LedgerEntry
    config_id: str  # the public id


@dataclass(frozen=True)
class PaymentRow:
    grant: Grant
    config_id: str  # the public id
    lot: Entitlement | None


@dataclass(frozen=True)
class PaymentTotals:
    count: int
    amount_cents: int
    last_paid_at: datetime | None


def _resumed(key: Any, id_col: Any, resume: Resume, *, descending: bool) -> ColumnElement[bool]:
    """Rows after `resume`. The plain `key <=` bound is what lets the index seek to the page."""
    at = resume.at
    past = key < at if descending else key > at
    if resume.tie is Ties.BEFORE:
        return past  # type: ignore[no-any-return]
    reached = key <= at if descending else key >= at
    if resume.tie is Ties.AFTER:
        return reached  # type: ignore[no-any-return]
    tie = id_col < resume.tie if descending else id_col > resume.tie
    return and_(reached, or_(past, tie))


def _page(
    stmt: Select[*Ts],
    key: Any,
    id_col: Any,
    resume: Resume | None,
    limit: int,
    *,
    descending: bool = True,
) -> Select[*Ts]:
    if resume is not None:
        stmt = stmt.where(_resumed(key, id_col, resume, descending=descending))
    order = (key.desc(), id_col.desc()) if descending else (key.asc(), id_col.asc())
    return stmt.order_by(*order).limit(limit)


# Contacts


def search_contacts(
    session: Session, location_id: str, text: str | None, resume: Resume | None, limit: int
) -> Sequence[Contact]:
    """Contacts of a location, newest first (created_at, then id), matching `text` if given.

    A contact matches when `text` equals its Kotally UUID, ghl_contact_id or
    external_contact_id, or appears in its name or email (case-insensitive; SQLite folds only
    ASCII case). The substring match scans the location's contacts: fine for a studio's
    thousands, and bounded by `limit` rows once enough have matched.
    """
    stmt = scoped(select(Contact), Contact, location_id)
    if text:
        folded = text.lower()
        conditions = [
            Contact.ghl_contact_id == text,
            Contact.external_contact_id == text,
            func.lower(Contact.name).contains(folded, autoescape=True),
            func.lower(Contact.email).contains(folded, autoescape=True),
        ]
        contact_uuid = parse_uuid(text)
        if contact_uuid is not None:
            conditions.append(Contact.id == contact_uuid)
        stmt = stmt.where(or_(*conditions))
    return (
        session.execute(_page(stmt, Contact.created_at, Contact.id, resume, limit)).scalars().all()
    )


# Lots


def _lots(location_id: str, contact_id: uuid.UUID) -> Select[Entitlement, ProductConfig]:
    stmt = select(Entitlement, ProductConfig).join(
        ProductConfig, ProductConfig.id == Entitlement.product_config_id
    )
    stmt = scoped(scoped(stmt, Entitlement, location_id), ProductConfig, location_id)
    return stmt.where(Entitlement.contact_id == contact_id)


def lots(
    session: Session, location_id: str, contact_id: uuid.UUID, resume: Resume | None, limit: int
) -> list[LotRow]:
    """Lots newest first (created_at, then id)."""
    stmt = _page(
        _lots(location_id, contact_id), Entitlement.created_at, Entitlement.id, resume, limit
    )
    return [LotRow(lot, config) for lot, config in session.execute(stmt)]


def usable_lots(
    session: Session, location_id: str, contact_id: uuid.UUID, now: datetime
) -> list[LotRow]:
    """Live lots with credits left (ledger.md invariant 3), config active: what can be spent."""
    stmt = _lots(location_id, contact_id).where(
        live_condition(now),
        ProductConfig.active.is_(True),
        Entitlement.credits_remaining > 0,
    )
    return [LotRow(lot, config) for lot, config in session.execute(stmt)]


# Ledger entries


def _entries(location_id: str, contact_id: uuid.UUID) -> Select[LedgerEntry, str]:
    stmt = select(LedgerEntry, ProductConfig.config_id).join(
        ProductConfig, ProductConfig.id == LedgerEntry.product_config_id
    )
    stmt = scoped(scoped(stmt, LedgerEntry, location_id), ProductConfig, location_id)
    return stmt.where(LedgerEntry.contact_id == contact_id)


def entries(
    session: Session, location_id: str, contact_id: uuid.UUID, before_id: int | None, limit: int
) -> list[EntryRow]:
    """Entries newest first in ledger order (id): the order `kotally verify` replays."""
    stmt = _entries(location_id, contact_id)
    if before_id is not None:
        stmt = stmt.where(LedgerEntry.id < before_id)
    stmt = stmt.order_by(LedgerEntry.id.desc()).limit(limit)
    return [EntryRow(entry, config_id) for entry, config_id in session.execute(stmt)]


def entries_by_time(
    session: Session, location_id: str, contact_id: uuid.UUID, resume: Resume | None, limit: int
) -> list[EntryRow]:
    """Entries newest first by created_at, then id: the timeline's order."""
    stmt = _page(
        _entries(location_id, contact_id), LedgerEntry.created_at, LedgerEntry.id, resume, limit
    )
    return [EntryRow(entry, config_id) for entry, config_id in session.execute(stmt)]


# Appointments


def _appointments(location_id: str, contact_id: uuid.UUID) -> Select[Appointment]:
    stmt = scoped(select(Appointment), Appointment, location_id)
    return stmt.where(Appointment.contact_id == contact_id)


def appointments_upcoming(
    session: Session,
    location_id: str,
    contact_id: uuid.UUID,
    now: datetime,
    resume: Resume | None,
    limit: int,
) -> Sequence[Appointment]:
    """Appointments at or after now, soonest first. Those without a time are never upcoming."""
    # With a time, APPOINTMENT_AT is that time: filtering on it keeps the index range tight.
    stmt = _appointments(location_id, contact_id).where(
        Appointment.appointment_time.is_not(None),
        APPOINTMENT_AT >= now,  # noqa: SIM300 (a SQL expression, not a constant)
    )
    stmt = _page(stmt, APPOINTMENT_AT, Appointment.id, resume, limit, descending=False)
    return session.execute(stmt).scalars().all()


def appointments_past(
    session: Session,
    location_id: str,
    contact_id: uuid.UUID,
    now: datetime,
    resume: Resume | None,
    limit: int,
) -> Sequence[Appointment]:
    """Appointments before now, latest first; those without a time, at their created_at."""
    stmt = _appointments(location_id, contact_id).where(
        or_(Appointment.appointment_time.is_(None), Appointment.appointment_time < now)
    )
    stmt = _page(stmt, APPOINTMENT_AT, Appointment.id, resume, limit)
    return session.execute(stmt).scalars().all()


def appointments(
    session: Session, location_id: str, contact_id: uuid.UUID, resume: Resume | None, limit: int
) -> Sequence[Appointment]:
    """Every appointment, latest APPOINTMENT_AT first (future ones lead)."""
    stmt = _page(
        _appointments(location_id, contact_id), APPOINTMENT_AT, Appointment.id, resume, limit
    )
    return session.execute(stmt).scalars().all()


# Payments (grants)


def payments(
    session: Session, location_id: str, contact_id: uuid.UUID, resume: Resume | None, limit: int
) -> list[PaymentRow]:
    """Payments newest first by paid_at (created_at when unknown), then id, with their lots."""
    stmt = select(Grant, ProductConfig.config_id).join(
        ProductConfig, ProductConfig.id == Grant.product_config_id
    )
    stmt = scoped(scoped(stmt, Grant, location_id), ProductConfig, location_id)
    stmt = _page(stmt.where(Grant.contact_id == contact_id), GRANT_AT, Grant.id, resume, limit)
    rows = session.execute(stmt).all()
    lots = _lots_of_grants(session, location_id, [grant.id for grant, _ in rows])
    return [PaymentRow(grant, config_id, lots.get(grant.id)) for grant, config_id in rows]


def _lots_of_grants(
    session: Session, location_id: str, grant_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Entitlement]:
    if not grant_ids:
        return {}
    stmt = scoped(select(Entitlement), Entitlement, location_id).where(
        Entitlement.grant_id.in_(grant_ids)
    )
    return {
        lot.grant_id: lot for lot in session.execute(stmt).scalars() if lot.grant_id is not None
    }


def payment_totals(session: Session, location_id: str, contact_id: uuid.UUID) -> PaymentTotals:
    stmt = scoped(
        select(
            func.count(Grant.id),
            func.coalesce(func.sum(func.coalesce(Grant.amount_cents, 0)), 0),
            func.max(GRANT_AT),
        ),
        Grant,
        location_id,
    ).where(Grant.contact_id == contact_id)
    count, amount, last = session.execute(stmt).one()
    return PaymentTotals(int(count), int(amount), last)
