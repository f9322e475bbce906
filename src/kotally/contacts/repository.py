"""Contact lookups. A contact matches when either of its stored ids equals the value sent."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Any, TypeVarTuple

from sqlalchemy import BindParameter, Row, Select, bindparam, case, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kotally.db.models import Contact
from kotally.db.scoping import scoped
from kotally.kit.ids import new_id, parse_uuid
from kotally.ledger.schemas import ContactRef

Ts = TypeVarTuple("Ts")


@cache
def _find_statement(field: str, lock: bool) -> Select[Contact]:
    """Built once per variant: on the check and deduct paths, building a statement cost more
    than running it."""
    stmt = _matching(select(Contact), field)
    return stmt.with_for_update() if lock else stmt


def _matching(stmt: Select[*Ts], field: str) -> Select[*Ts]:
    """The contact whose ghl or external id is the value; the one sent in `field` first."""
    value: BindParameter[str] = bindparam("value")
    same_field = (
        Contact.ghl_contact_id if field == "ghl_contact_id" else Contact.external_contact_id
    )
    return (
        scoped(stmt, Contact, bindparam("location_id"))
        .where(or_(Contact.ghl_contact_id == value, Contact.external_contact_id == value))
        .order_by(case((same_field == value, 0), else_=1))
        .limit(1)
    )


@cache
def find_id_statement(field: str, lock: bool) -> Select[uuid.UUID]:
    """The id alone (the ledger's operations use nothing else): no object loaded.

    Bound: location_id, value (the check reads it as a subquery of its one statement too)."""
    stmt = _matching(select(Contact.id), field)
    return stmt.with_for_update() if lock else stmt


def find(
    session: Session, location_id: str, ref: ContactRef, *, lock: bool = False
) -> Contact | None:
    """The contact `ref` names; with lock, its row is locked FOR UPDATE (PostgreSQL).

    If one contact holds the value as a ghl id and another as an external id, the one whose
    field matches the field the value was sent in wins.
    """
    stmt = _find_statement(ref.field, lock)
    params = {"location_id": location_id, "value": ref.value}
    return session.execute(stmt, params).scalar_one_or_none()


def find_id(
    session: Session, location_id: str, ref: ContactRef, *, lock: bool = False
) -> uuid.UUID | None:
    """The id of the contact `ref` names (the same match as `find`); with lock, its row is
    locked FOR UPDATE (PostgreSQL)."""
    params = {"location_id": location_id, "value": ref.value}
    stmt = find_id_statement(ref.field, lock)
    found: uuid.UUID | None = session.connection().execute(stmt, params).scalar_one_or_none()
    return found


_CONTACT_ROW = select(*Contact.__table__.columns)
_ROW_BY_ID = scoped(_CONTACT_ROW, Contact, bindparam("location_id")).where(
    Contact.id == bindparam("contact_id")
)
_ROW_BY_OTHER_ID = _matching(_CONTACT_ROW, "ghl_contact_id")


def find_row_for_read(session: Session, location_id: str, any_id: str) -> Row[Any] | None:
    """A contact by its Kotally UUID, ghl_contact_id or external_contact_id, as a table row (the
    contact reads show it, and loading a row costs a fraction of loading an object)."""
    connection = session.connection()
    contact_uuid = parse_uuid(any_id)
    if contact_uuid is not None:
        params = {"location_id": location_id, "contact_id": contact_uuid}
        by_uuid = connection.execute(_ROW_BY_ID, params).first()
        if by_uuid is not None:
            return by_uuid
    return connection.execute(
        _ROW_BY_OTHER_ID, {"location_id": location_id, "value": any_id}
    ).first()


def find_for_read(session: Session, location_id: str, any_id: str) -> Contact | None:
    """The contact `find_row_for_read` finds, as a mapped object (the admin UI acts on it)."""
    row = find_row_for_read(session, location_id, any_id)
    return None if row is None else session.get(Contact, row.id)


def get_locked(session: Session, location_id: str, contact_id: uuid.UUID) -> Contact | None:
    """The contact by its Kotally id, its row locked FOR UPDATE (PostgreSQL)."""
    stmt = (
        scoped(select(Contact), Contact, location_id)
        .where(Contact.id == contact_id)
        .with_for_update()
    )
    return session.execute(stmt).scalar_one_or_none()


def id_taken(session: Session, location_id: str, field: str, value: str) -> bool:
    column = Contact.ghl_contact_id if field == "ghl_contact_id" else Contact.external_contact_id
    stmt = scoped(select(Contact.id), Contact, location_id).where(column == value).limit(1)
    return session.execute(stmt).first() is not None


def insert_if_absent(
    session: Session,
    *,
    location_id: str,
    ghl_contact_id: str | None,
    external_contact_id: str | None,
    email: str | None,
    name: str | None,
    now: datetime,
) -> bool:
    """Create a contact unless one of its ids is taken (a concurrent grant may have won)."""
    dialect = session.get_bind().dialect.name
    builder = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        builder(Contact)
        .values(
            id=new_id(),
            location_id=location_id,
            ghl_contact_id=ghl_contact_id,
            external_contact_id=external_contact_id,
            email=email,
            name=name,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(Contact.id)
    )
    return session.execute(stmt).scalar_one_or_none() is not None
