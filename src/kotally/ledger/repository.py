"""Every query of the ledger: lots, entries, grants, appointments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kotally.db.models import (
    Appointment,
    Entitlement,
    Grant,
    LedgerEntry,
    ProductConfig,
)
from kotally.db.models.entitlement import LIVE_STATUSES
from kotally.db.scoping import scoped

CONSUMPTION_ORDER = (
    Entitlement.expires_at.asc().nulls_last(),
    Entitlement.created_at.asc(),
    Entitlement.id.asc(),
)


def live_condition(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """ledger.md invariant 3, less 'config active', which the selection guarantees."""
    return and_(
        Entitlement.status.in_(LIVE_STATUSES),
        Entitlement.effective_at <= now,
        or_(Entitlement.expires_at.is_(None), Entitlement.expires_at > now),
    )


def all_lots(
    session: Session, location_id: str, contact_id: uuid.UUID, config_ids: Sequence[uuid.UUID]
) -> Sequence[Entitlement]:
    stmt = (
        scoped(select(Entitlement), Entitlement, location_id)
        .where(
            Entitlement.contact_id == contact_id,
            Entitlement.product_config_id.in_(config_ids),
        )
        .order_by(*CONSUMPTION_ORDER)
    )
    return session.execute(stmt).scalars().all()


def has_usable_elsewhere(
    session: Session,
    location_id: str,
    contact_id: uuid.UUID,
    excluded_config_ids: Sequence[uuid.UUID],
    now: datetime,
) -> bool:
    stmt = (
        scoped(select(Entitlement.id), Entitlement, location_id)
        .join(ProductConfig, ProductConfig.id == Entitlement.product_config_id)
        .where(
            Entitlement.contact_id == contact_id,
            Entitlement.product_config_id.not_in(excluded_config_ids),
            ProductConfig.active.is_(True),
            Entitlement.credits_remaining > 0,
            live_condition(now),
        )
        .limit(1)
    )
    return session.execute(stmt).first() is not None


def balance(
    session: Session, location_id: str, contact_id: uuid.UUID, config_id: uuid.UUID, now: datetime
) -> int:
    """The contact's live credits on one config; none if the config has been deactivated since."""
    stmt = (
        scoped(
            select(func.coalesce(func.sum(Entitlement.credits_remaining), 0)),
            Entitlement,
            location_id,
        )
        .join(ProductConfig, ProductConfig.id == Entitlement.product_config_id)
        .where(
            Entitlement.contact_id == contact_id,
            Entitlement.product_config_id == config_id,
            ProductConfig.active.is_(True),
            live_condition(now),
        )
    )
    return int(session.execute(stmt).scalar_one())


def entries_for_ref(
    session: Session,
    location_id: str,
    contact_id: uuid.UUID,
    external_ref: str,
    config_ids: Sequence[uuid.UUID],
) -> Sequence[LedgerEntry]:
    """Deduct and restore entries of one contact for one external_ref, oldest first."""
    stmt = (
        scoped(select(LedgerEntry), LedgerEntry, location_id)
        .where(
            LedgerEntry.contact_id == contact_id,
            LedgerEntry.external_ref == external_ref,
            LedgerEntry.kind.in_(("deduct", "restore")),
            LedgerEntry.product_config_id.in_(config_ids),
        )
        .order_by(LedgerEntry.id)
    )
    return session.execute(stmt).scalars().all()


def lots_by_id(
    session: Session, location_id: str, lot_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Entitlement]:
    stmt = scoped(select(Entitlement), Entitlement, location_id).where(Entitlement.id.in_(lot_ids))
    return {lot.id: lot for lot in session.execute(stmt).scalars()}


def grant_by_payment(session: Session, location_id: str, external_payment_id: str) -> Grant | None:
    stmt = scoped(select(Grant), Grant, location_id).where(
        Grant.external_payment_id == external_payment_id
    )
    return session.execute(stmt).scalar_one_or_none()


def insert_grant(session: Session, values: dict[str, object]) -> bool:
    """Insert a grant unless its external_payment_id exists (a concurrent grant may have won)."""
    dialect = session.get_bind().dialect.name
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        builder(Grant)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["location_id", "external_payment_id"])
        .returning(Grant.id)
    )
    return session.execute(stmt).scalar_one_or_none() is not None


def lot_of_grant(session: Session, location_id: str, grant_id: uuid.UUID) -> Entitlement | None:
    stmt = scoped(select(Entitlement), Entitlement, location_id).where(
        Entitlement.grant_id == grant_id
    )
    return session.execute(stmt).scalars().first()


def appointment_by_ref(session: Session, location_id: str, external_ref: str) -> Appointment | None:
    stmt = scoped(select(Appointment), Appointment, location_id).where(
        Appointment.external_ref == external_ref
    )
    return session.execute(stmt).scalar_one_or_none()
