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
from functools import cache
from typing import Any, TypeVarTuple

from sqlalchemy import BindParameter, ColumnElement, Row, Select, and_, bindparam, func, or_, select
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
class ConfigRef:
    """What the reads show of a lot's config."""

    id: uuid.UUID
    config_id: str  # the public id
    name: str
    type: str


# The list queries return table rows, not mapped objects: a row's attributes are the columns'
# names, as the mapped objects' are (the reads and templates use them alike), and loading rows
# costs a fraction of loading objects (the benchmark: the contact summary).
@dataclass(frozen=True)
class LotRow:
    lot: Row[Any]  # the entitlements columns
    config: ConfigRef


@dataclass(frozen=True)
class EntryRow:
    entry: Row[Any]  # the ledger_entries columns
    config_id: str  # the public id


@dataclass(frozen=True)
class LotRef:
    """What the reads show of a payment's lot."""

    id: uuid.UUID
    credits_granted: int


@dataclass(frozen=True)
class PaymentRow:
    grant: Row[Any]  # the grants columns
    config_id: str  # the public id
    lot: LotRef | None


@dataclass(frozen=True)
class PaymentTotals:
    count: int
    amount_cents: int
    last_paid_at: datetime | None


# The shape of a page's start: none (the first page), Ties.BEFORE, Ties.AFTER, or "id" (a tie
# broken by the id). Statements are built once per list and shape, with bound parameters.
Shape = Ties | str | None


def _shape(resume: Resume | None) -> Shape:
    if resume is None:
        return None
    return resume.tie if isinstance(resume.tie, Ties) else "id"


def _page_params(resume: Resume | None, limit: int) -> dict[str, Any]:
    """The values `_page` binds."""
    params: dict[str, Any] = {"limit": limit}
    if resume is not None:
        params["at"] = resume.at
        if not isinstance(resume.tie, Ties):
            params["tie"] = resume.tie
    return params


def _resumed(key: Any, id_col: Any, shape: Shape, *, descending: bool) -> ColumnElement[bool]:
    """Rows after the bound resume point. The plain `key <=` bound is what lets the index seek
    to the page. Bound: at, and tie for the "id" shape."""
    at: BindParameter[datetime] = bindparam("at")
    past = key < at if descending else key > at
    if shape is Ties.BEFORE:
        return past  # type: ignore[no-any-return]
    reached = key <= at if descending else key >= at
    if shape is Ties.AFTER:
        return reached  # type: ignore[no-any-return]
    tie: BindParameter[Any] = bindparam("tie")
    tied = id_col < tie if descending else id_col > tie
    return and_(reached, or_(past, tied))


def _page(
    stmt: Select[*Ts],
    key: Any,
    id_col: Any,
    shape: Shape,
    *,
    descending: bool = True,
) -> Select[*Ts]:
    """A page of `stmt` in (key, id) order from the bound start. Bound: limit, and `_resumed`'s."""
    if shape is not None:
        stmt = stmt.where(_resumed(key, id_col, shape, descending=descending))
    order = (key.desc(), id_col.desc()) if descending else (key.asc(), id_col.asc())
    return stmt.order_by(*order).limit(bindparam("limit"))


def _rows(session: Session, stmt: Select[Any], params: dict[str, Any]) -> Sequence[Row[Any]]:
    return session.connection().execute(stmt, params).all()


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
    stmt = _page(stmt, Contact.created_at, Contact.id, _shape(resume))
    return session.execute(stmt, _page_params(resume, limit)).scalars().all()


# Lots

_LOT = Entitlement.__table__.c
_CONFIG = ProductConfig.__table__.c
_ENTRY = LedgerEntry.__table__.c
_GRANT = Grant.__table__.c
_APPOINTMENT = Appointment.__table__.c
# The lot's config, beside the lot's own columns.
_CONFIG_COLUMNS = (
    _CONFIG.config_id.label("config_public_id"),
    _CONFIG.name.label("config_name"),
    _CONFIG.type.label("config_type"),
)


def _of_contact(stmt: Select[*Ts], table: Any) -> Select[*Ts]:
    """Bound: location_id, contact_id."""
    return scoped(stmt, table, bindparam("location_id")).where(
        table.contact_id == bindparam("contact_id")
    )


def _with_config(stmt: Select[*Ts], config_key: Any) -> Select[*Ts]:
    """Joined to the row's config, in the same location (bound: location_id)."""
    return scoped(
        stmt.join(ProductConfig.__table__, _CONFIG.id == config_key),
        _CONFIG,
        bindparam("location_id"),
    )


def _lots() -> Select[Any]:
    stmt = select(*Entitlement.__table__.columns, *_CONFIG_COLUMNS)
    return _of_contact(_with_config(stmt, _LOT.product_config_id), _LOT)


def _lot_rows(rows: Sequence[Row[Any]]) -> list[LotRow]:
    return [
        LotRow(
            row,
            ConfigRef(
                row.product_config_id, row.config_public_id, row.config_name, row.config_type
            ),
        )
        for row in rows
    ]


@cache
def _lots_page(shape: Shape) -> Select[Any]:
    return _page(_lots(), _LOT.created_at, _LOT.id, shape)


_USABLE_LOTS = _lots().where(
    live_condition(bindparam("now")),
    _CONFIG.active.is_(True),
    _LOT.credits_remaining > 0,
)


def lots(
    session: Session, location_id: str, contact_id: uuid.UUID, resume: Resume | None, limit: int
) -> list[LotRow]:
    """Lots newest first (created_at, then id)."""
    params = {"location_id": location_id, "contact_id": contact_id, **_page_params(resume, limit)}
    return _lot_rows(_rows(session, _lots_page(_shape(resume)), params))


def usable_lots(
    session: Session, location_id: str, contact_id: uuid.UUID, now: datetime
) -> list[LotRow]:
    """Live lots with credits left (ledger.md invariant 3), config active: what can be spent."""
    params = {"location_id": location_id, "contact_id": contact_id, "now": now}
    return _lot_rows(_rows(session, _USABLE_LOTS, params))


# Ledger entries


def _entries() -> Select[Any]:
    stmt = select(*LedgerEntry.__table__.columns, _CONFIG.config_id.label("config_public_id"))
    return _of_contact(_with_config(stmt, _ENTRY.product_config_id), _ENTRY)


def _entry_rows(rows: Sequence[Row[Any]]) -> list[EntryRow]:
    return [EntryRow(row, row.config_public_id) for row in rows]


_ENTRIES = _entries().order_by(_ENTRY.id.desc()).limit(bindparam("limit"))
_ENTRIES_BEFORE = (
    _entries()
    .where(_ENTRY.id < bindparam("before_id"))
    .order_by(_ENTRY.id.desc())
    .limit(bindparam("limit"))
)


def entries(
    session: Session, location_id: str, contact_id: uuid.UUID, before_id: int | None, limit: int
) -> list[EntryRow]:
    """Entries newest first in ledger order (id): the order `kotally verify` replays."""
    params: dict[str, Any] = {"location_id": location_id, "contact_id": contact_id, "limit": limit}
    stmt = _ENTRIES
    if before_id is not None:
        stmt, params["before_id"] = _ENTRIES_BEFORE, before_id
    return _entry_rows(_rows(session, stmt, params))


@cache
def _entries_by_time(shape: Shape) -> Select[Any]:
    return _page(_entries(), _ENTRY.created_at, _ENTRY.id, shape)


def entries_by_time(
    session: Session, location_id: str, contact_id: uuid.UUID, resume: Resume | None, limit: int
) -> list[EntryRow]:
    """Entries newest first by created_at, then id: the timeline's order."""
    params = {"location_id": location_id, "contact_id": contact_id, **_page_params(resume, limit)}
    return _entry_rows(_rows(session, _entries_by_time(_shape(resume)), params))


# Appointments


def _appointments() -> Select[Any]:
    return _of_contact(select(*Appointment.__table__.columns), _APPOINTMENT)


@cache
def _appointments_page(shape: Shape, when: str | None) -> Select[Any]:
    """`when`: "upcoming" (at or after the bound now, soonest first), "past" (before it, latest
    first), or None (every appointment, latest first)."""
    stmt = _appointments()
    if when == "upcoming":
        # With a time, APPOINTMENT_AT is that time: filtering on it keeps the index range tight.
        stmt = stmt.where(
            _APPOINTMENT.appointment_time.is_not(None),
            APPOINTMENT_AT >= bindparam("now"),  # noqa: SIM300 (a SQL expression)
        )
    elif when == "past":
        stmt = stmt.where(
            or_(
                _APPOINTMENT.appointment_time.is_(None),
                _APPOINTMENT.appointment_time < bindparam("now"),
            )
        )
    return _page(stmt, APPOINTMENT_AT, _APPOINTMENT.id, shape, descending=when != "upcoming")


def _appointment_rows(
    session: Session,
    when: str | None,
    location_id: str,
    contact_id: uuid.UUID,
    now: datetime | None,
    resume: Resume | None,
    limit: int,
) -> Sequence[Row[Any]]:
    params = {"location_id": location_id, "contact_id": contact_id, **_page_params(resume, limit)}
    if now is not None:
        params["now"] = now
    return _rows(session, _appointments_page(_shape(resume), when), params)


def appointments_upcoming(
    session: Session,
    location_id: str,
    contact_id: uuid.UUID,
    now: datetime,
    resume: Resume | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Appointments at or after now, soonest first. Those without a time are never upcoming."""
    return _appointment_rows(session, "upcoming", location_id, contact_id, now, resume, limit)


def appointments_past(
    session: Session,
    location_id: str,
    contact_id: uuid.UUID,
    now: datetime,
    resume: Resume | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Appointments before now, latest first; those without a time, at their created_at."""
    return _appointment_rows(session, "past", location_id, contact_id, now, resume, limit)


def appointments(
    session: Session, location_id: str, contact_id: uuid.UUID, resume: Resume | None, limit: int
) -> Sequence[Row[Any]]:
    """Every appointment, latest APPOINTMENT_AT first (future ones lead)."""
    return _appointment_rows(session, None, location_id, contact_id, None, resume, limit)


# Payments (grants)


@cache
def _payments_page(shape: Shape) -> Select[Any]:
    """With the grant's lot (a grant makes one), joined: one statement for the page."""
    stmt = select(
        *Grant.__table__.columns,
        _CONFIG.config_id.label("config_public_id"),
        _LOT.id.label("lot_id"),
        _LOT.credits_granted.label("lot_credits_granted"),
    ).outerjoin(
        Entitlement.__table__,
        and_(_LOT.grant_id == _GRANT.id, _LOT.location_id == bindparam("location_id")),
    )
    stmt = _of_contact(_with_config(stmt, _GRANT.product_config_id), _GRANT)
    return _page(stmt, GRANT_AT, _GRANT.id, shape)


def payments(
    session: Session, location_id: str, contact_id: uuid.UUID, resume: Resume | None, limit: int
) -> list[PaymentRow]:
    """Payments newest first by paid_at (created_at when unknown), then id, with their lots."""
    params = {"location_id": location_id, "contact_id": contact_id, **_page_params(resume, limit)}
    return [
        PaymentRow(
            row,
            row.config_public_id,
            None if row.lot_id is None else LotRef(row.lot_id, row.lot_credits_granted),
        )
        for row in _rows(session, _payments_page(_shape(resume)), params)
    ]


_PAYMENT_TOTALS = _of_contact(
    select(
        func.count(_GRANT.id),
        func.coalesce(func.sum(func.coalesce(_GRANT.amount_cents, 0)), 0),
        func.max(GRANT_AT),
    ),
    _GRANT,
)


def payment_totals(session: Session, location_id: str, contact_id: uuid.UUID) -> PaymentTotals:
    params = {"location_id": location_id, "contact_id": contact_id}
    count, amount, last = session.connection().execute(_PAYMENT_TOTALS, params).one()
    return PaymentTotals(int(count), int(amount), last)
