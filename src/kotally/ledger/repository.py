"""Every query of the ledger: lots, entries, grants, appointments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kotally.configs import repository as configs
from kotally.contacts import repository as contacts
from kotally.db.models import (
    Appointment,
    Entitlement,
    Grant,
    LedgerEntry,
    ProductConfig,
)
from kotally.db.models.entitlement import LIVE_STATUSES
from kotally.db.scoping import S, scoped
from kotally.ledger.schemas import ContactRef

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


def _live(stmt: S) -> S:
    """The contact's live lots in the selection.

    Bound: location_id, contact_id, config_ids, now."""
    return scoped(stmt, Entitlement, bindparam("location_id")).where(
        Entitlement.contact_id == bindparam("contact_id"),
        Entitlement.product_config_id.in_(bindparam("config_ids", expanding=True)),
        live_condition(bindparam("now")),
    )


# Built once: check and deduct run them on every request, and building one cost more than
# running it.
_LIVE_LOTS = _live(select(Entitlement)).order_by(*CONSUMPTION_ORDER)
# The check needs only how many and how much: no lot objects to load.
_LIVE_BALANCE = _live(
    select(func.count(Entitlement.id), func.coalesce(func.sum(Entitlement.credits_remaining), 0))
)


def live_lots(
    session: Session,
    location_id: str,
    contact_id: uuid.UUID,
    config_ids: Sequence[uuid.UUID],
    now: datetime,
) -> Sequence[Entitlement]:
    """The contact's live lots in the selection, in consumption order."""
    params = _live_params(location_id, contact_id, config_ids, now)
    return session.execute(_LIVE_LOTS, params).scalars().all()


def live_balance(
    session: Session,
    location_id: str,
    contact_id: uuid.UUID,
    config_ids: Sequence[uuid.UUID],
    now: datetime,
) -> tuple[int, int]:
    """(how many live lots, their credits) of the contact in the selection."""
    params = _live_params(location_id, contact_id, config_ids, now)
    count, credits = session.connection().execute(_LIVE_BALANCE, params).one()
    return int(count), int(credits)


@cache
def _check_facts(field: str) -> Select[uuid.UUID, uuid.UUID, int, int]:
    """The config by its public id, the contact by the id sent in `field`, and their live lots'
    count and credits, in one statement. Bound: location_id, config_id, value, now."""
    config = configs.ACTIVE_ID.scalar_subquery()
    contact = contacts.find_id_statement(field, False).scalar_subquery()
    return select(
        config,
        contact,
        func.count(Entitlement.id),
        func.coalesce(func.sum(Entitlement.credits_remaining), 0),
    ).where(
        Entitlement.location_id == bindparam("location_id"),
        Entitlement.contact_id == contact,
        Entitlement.product_config_id == config,
        live_condition(bindparam("now")),
    )


def check_facts(
    session: Session, location_id: str, config_id: str, contact: ContactRef, now: datetime
) -> tuple[uuid.UUID | None, uuid.UUID | None, int, int]:
    """(the active config's id, the contact's id, how many live lots, their credits): what
    configs.active_id, contacts.find_id and live_balance read, in one round trip."""
    params = {
        "location_id": location_id,
        "config_id": config_id,
        "value": contact.value,
        "now": now,
    }
    config, contact_id, count, credits = (
        session.connection().execute(_check_facts(contact.field), params).one()
    )
    return config, contact_id, int(count), int(credits)


def _live_params(
    location_id: str, contact_id: uuid.UUID, config_ids: Sequence[uuid.UUID], now: datetime
) -> dict[str, object]:
    """The values `_live` binds."""
    return {
        "location_id": location_id,
        "contact_id": contact_id,
        "config_ids": list(config_ids),
        "now": now,
    }


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
