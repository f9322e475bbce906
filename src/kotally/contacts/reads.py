"""The contact reads of api-v2.md §4.6, without HTTP.

Each function takes the contact as any of its keys (Kotally UUID, ghl_contact_id or
external_contact_id) and returns the body beside the envelope, or None when the location has no
such contact (the router answers NOT_FOUND). A malformed `cursor` raises `InvalidCursor` (a
ValueError) before anything is looked up, so the router can answer 422 on the `cursor` field.

Lists return at most `limit` items (1-100; the router validates, default LIMIT_DEFAULT) and add
`next_cursor` only when more items follow. Cursors are keyset positions (the last item's sort key,
id as tie-breaker), so a page reads only its own rows and items never repeat or go missing
between pages, even when many share a timestamp.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row
from sqlalchemy.orm import Session

from kotally.contacts import read_repository as repo
from kotally.contacts import schemas
from kotally.contacts.read_repository import Resume, Ties
from kotally.contacts.repository import find_row_for_read
from kotally.kit.clock import Clock, isoformat
from kotally.kit.pagination import (
    LIMIT_DEFAULT,
    InvalidCursor,
    check_limit,
    decode_cursor,
    encode_cursor,
    parse_int_part,
    parse_time_part,
    parse_uuid_part,
    time_part,
)

__all__ = [
    "LIMIT_DEFAULT",
    "InvalidCursor",
    "appointments_past",
    "appointments_upcoming",
    "check_cursor",
    "contact",
    "credits",
    "entitlements",
    "ledger",
    "payments",
    "search",
    "summary",
    "timeline",
]

Body = dict[str, Any]
T = TypeVar("T")

# The summary's recent_ledger, recent_appointments and recent_payments (api-v2.md §4.6).
RECENT_ITEMS = 5
# Lots shown by summary and credits, newest first; usable lots are shown even beyond this.
LOTS_SHOWN_MAX = 100

# Cursor tags: a cursor of one list is refused by the others.
_ENTITLEMENTS, _UPCOMING, _PAST, _LEDGER, _PAYMENTS, _TIMELINE = "e", "u", "a", "l", "p", "t"
_SEARCH = "c"

# Timeline order among items at the same instant, newest first: an effect before its cause (the
# grant entry before its payment, the deduct entry before the booking it recorded).
_TYPE_RANK = {"ledger_entry": 2, "appointment": 1, "payment": 0}


def search(
    session: Session,
    clock: Clock,
    location_id: str,
    text: str | None,
    limit: int = LIMIT_DEFAULT,
    cursor: str | None = None,
) -> Body:
    """Contacts matching `text` (any id exactly, or part of the name or email), newest first.

    Without `text`, every contact of the location, newest first. Paged like the other lists.
    """
    fetch = check_limit(limit) + 1
    resume = _time_id_cursor(cursor, _SEARCH)
    rows = repo.search_contacts(session, location_id, text or None, resume, fetch)
    return _paged(
        "contacts",
        rows,
        limit,
        schemas.contact,
        lambda row: encode_cursor(_SEARCH, time_part(row.created_at), str(row.id)),
    )


def contact(session: Session, clock: Clock, location_id: str, contact_key: str) -> Body | None:
    found = find_row_for_read(session, location_id, contact_key)
    if found is None:
        return None
    return {"contact": schemas.contact(found)}


def summary(session: Session, clock: Clock, location_id: str, contact_key: str) -> Body | None:
    """The contact, its balance, current lots, payment totals and its 5 latest of each list.

    `entitlements` are the lots as in `credits`. `recent_appointments` are the latest by time,
    so booked future appointments lead, as on the timeline.
    """
    found = find_row_for_read(session, location_id, contact_key)
    if found is None:
        return None
    now = clock.now()
    available, lots = _balance_and_lots(session, location_id, found, now)
    totals = repo.payment_totals(session, location_id, found.id)
    entries = repo.entries(session, location_id, found.id, None, RECENT_ITEMS)
    bookings = repo.appointments(session, location_id, found.id, None, RECENT_ITEMS)
    paid = repo.payments(session, location_id, found.id, None, RECENT_ITEMS)
    return {
        "contact": schemas.contact(found),
        "summary": {
            "credits_available": available,
            "last_paid_at": isoformat(totals.last_paid_at),
            "lifetime_value_cents": totals.amount_cents,
            "payment_events_count": totals.count,
            "entitlements": lots,
            "recent_ledger": [schemas.ledger_entry(r.entry, r.config_id) for r in entries],
            "recent_appointments": [schemas.appointment(a) for a in bookings],
            "recent_payments": [schemas.payment(r.grant, r.config_id, r.lot) for r in paid],
        },
    }


def credits(session: Session, clock: Clock, location_id: str, contact_key: str) -> Body | None:
    """`credits_available`: Σ credits_remaining over live lots whose config is active.

    `entitlements` (short form, newest first): the newest LOTS_SHOWN_MAX lots of any status, plus
    every older lot that still holds usable credits, so each credit counted is shown. The full
    history pages through `entitlements()`.
    """
    found = find_row_for_read(session, location_id, contact_key)
    if found is None:
        return None
    available, lots = _balance_and_lots(session, location_id, found, clock.now())
    return {"credits_available": available, "entitlements": lots}


def _balance_and_lots(
    session: Session, location_id: str, found: Row[Any], now: datetime
) -> tuple[int, list[Body]]:
    usable = repo.usable_lots(session, location_id, found.id, now)
    shown = {
        row.lot.id: row
        for row in repo.lots(session, location_id, found.id, None, LOTS_SHOWN_MAX) + usable
    }
    ordered = sorted(shown.values(), key=lambda row: (row.lot.created_at, row.lot.id), reverse=True)
    lots = [schemas.entitlement_short(row.lot, row.config.config_id, now) for row in ordered]
    return sum(row.lot.credits_remaining for row in usable), lots


def entitlements(
    session: Session,
    clock: Clock,
    location_id: str,
    contact_key: str,
    limit: int = LIMIT_DEFAULT,
    cursor: str | None = None,
) -> Body | None:
    """Every lot of the contact, any status, newest first (created_at, then id), full form."""
    fetch = check_limit(limit) + 1
    resume = _time_id_cursor(cursor, _ENTITLEMENTS)
    found = find_row_for_read(session, location_id, contact_key)
    if found is None:
        return None
    rows = repo.lots(session, location_id, found.id, resume, fetch)
    now = clock.now()
    return _paged(
        "entitlements",
        rows,
        limit,
        lambda row: schemas.entitlement_full(row.lot, row.config, now),
        lambda row: encode_cursor(_ENTITLEMENTS, time_part(row.lot.created_at), str(row.lot.id)),
    )


def appointments_upcoming(
    session: Session,
    clock: Clock,
    location_id: str,
    contact_key: str,
    limit: int = LIMIT_DEFAULT,
    cursor: str | None = None,
) -> Body | None:
    """Appointments with appointment_time >= now, soonest first (then id).

    An appointment recorded without a time is never upcoming: see `appointments_past`.
    """
    fetch = check_limit(limit) + 1
    resume = _time_id_cursor(cursor, _UPCOMING)
    found = find_row_for_read(session, location_id, contact_key)
    if found is None:
        return None
    rows = repo.appointments_upcoming(session, location_id, found.id, clock.now(), resume, fetch)
    return _appointment_page(rows, limit, _UPCOMING)


def appointments_past(
    session: Session,
    clock: Clock,
    location_id: str,
    contact_key: str,
    limit: int = LIMIT_DEFAULT,
    cursor: str | None = None,
) -> Body | None:
    """Appointments with appointment_time < now, latest first (then id).

    An appointment recorded without a time (a deduct with `external_ref` but no
    `appointment_time`) is listed here, placed at the time it was recorded (its created_at): it
    was booked, it cannot be shown as upcoming, and hiding it would hide credits it drew. The
    timeline places it the same way.
    """
    fetch = check_limit(limit) + 1
    resume = _time_id_cursor(cursor, _PAST)
    found = find_row_for_read(session, location_id, contact_key)
    if found is None:
        return None
    rows = repo.appointments_past(session, location_id, found.id, clock.now(), resume, fetch)
    return _appointment_page(rows, limit, _PAST)


def _appointment_page(rows: Sequence[Row[Any]], limit: int, tag: str) -> Body:
    return _paged(
        "appointments",
        rows,
        limit,
        schemas.appointment,
        lambda row: encode_cursor(tag, time_part(_appointment_at(row)), str(row.id)),
    )


def ledger(
    session: Session,
    clock: Clock,
    location_id: str,
    contact_key: str,
    limit: int = LIMIT_DEFAULT,
    cursor: str | None = None,
) -> Body | None:
    """Ledger entries of the contact, newest first in ledger order (the integer id)."""
    fetch = check_limit(limit) + 1
    before_id = _ledger_cursor(cursor)
    found = find_row_for_read(session, location_id, contact_key)
    if found is None:
        return None
    rows = repo.entries(session, location_id, found.id, before_id, fetch)
    return _paged(
        "entries",
        rows,
        limit,
        lambda row: schemas.ledger_entry(row.entry, row.config_id),
        lambda row: encode_cursor(_LEDGER, row.entry.id),
    )


def payments(
    session: Session,
    clock: Clock,
    location_id: str,
    contact_key: str,
    limit: int = LIMIT_DEFAULT,
    cursor: str | None = None,
) -> Body | None:
    """Payments (grants) newest first by paid_at, or created_at when paid_at is unknown; then id.

    The same time as the timeline's `at` for a payment, so both lists agree.
    """
    fetch = check_limit(limit) + 1
    resume = _time_id_cursor(cursor, _PAYMENTS)
    found = find_row_for_read(session, location_id, contact_key)
    if found is None:
        return None
    rows = repo.payments(session, location_id, found.id, resume, fetch)
    return _paged(
        "payments",
        rows,
        limit,
        lambda row: schemas.payment(row.grant, row.config_id, row.lot),
        lambda row: encode_cursor(_PAYMENTS, time_part(_grant_at(row.grant)), str(row.grant.id)),
    )


@dataclass(frozen=True)
class _Item:
    at: datetime
    type: str
    id: int | uuid.UUID
    form: Body

    def key(self) -> tuple[datetime, int, int | uuid.UUID]:
        return (self.at, _TYPE_RANK[self.type], self.id)

    def body(self) -> Body:
        return {"type": self.type, "at": isoformat(self.at), **self.form}


def timeline(
    session: Session,
    clock: Clock,
    location_id: str,
    contact_key: str,
    limit: int = LIMIT_DEFAULT,
    cursor: str | None = None,
) -> Body | None:
    """Ledger entries, appointments and payments merged, newest first.

    `at`: an entry's created_at; an appointment's appointment_time, else its created_at; a
    payment's paid_at, else its created_at. Ties on `at` go ledger entry, appointment, payment,
    then id descending. Each source is read from the cursor onwards, limit + 1 rows at most, so
    the merged page is exact however the three interleave.
    """
    fetch = check_limit(limit) + 1
    position = _timeline_cursor(cursor)
    found = find_row_for_read(session, location_id, contact_key)
    if found is None:
        return None

    def resume(kind: str) -> Resume | None:
        if position is None:
            return None
        at, kind_at, tie = position
        if _TYPE_RANK[kind] == _TYPE_RANK[kind_at]:
            return Resume(at, tie)
        # A lower rank sorts after the cursor's item at the same instant, a higher one before.
        return Resume(at, Ties.AFTER if _TYPE_RANK[kind] < _TYPE_RANK[kind_at] else Ties.BEFORE)

    entries = repo.entries_by_time(session, location_id, found.id, resume("ledger_entry"), fetch)
    bookings = repo.appointments(session, location_id, found.id, resume("appointment"), fetch)
    paid = repo.payments(session, location_id, found.id, resume("payment"), fetch)
    items = [
        *(_entry_item(row) for row in entries),
        *(_appointment_item(row) for row in bookings),
        *(_payment_item(row) for row in paid),
    ]
    items.sort(key=_Item.key, reverse=True)
    return _paged(
        "items",
        items,
        limit,
        _Item.body,
        lambda item: encode_cursor(_TIMELINE, time_part(item.at), item.type, str(item.id)),
    )


def _entry_item(row: repo.EntryRow) -> _Item:
    form = schemas.ledger_entry(row.entry, row.config_id)
    return _Item(row.entry.created_at, "ledger_entry", row.entry.id, form)


def _appointment_item(row: Row[Any]) -> _Item:
    return _Item(_appointment_at(row), "appointment", row.id, schemas.appointment(row))


def _payment_item(row: repo.PaymentRow) -> _Item:
    form = schemas.payment(row.grant, row.config_id, row.lot)
    return _Item(_grant_at(row.grant), "payment", row.grant.id, form)


# Helpers


def _paged(
    name: str,
    rows: Sequence[T],
    limit: int,
    render: Callable[[T], Body],
    cursor_of: Callable[[T], str],
) -> Body:
    """The first `limit` of `rows` (fetched limit + 1) and, when more follow, `next_cursor`."""
    page = rows[:limit]
    body: Body = {name: [render(row) for row in page]}
    if len(rows) > limit:
        body["next_cursor"] = cursor_of(page[-1])
    return body


def _appointment_at(row: Row[Any]) -> datetime:
    """APPOINTMENT_AT in Python."""
    at: datetime = row.appointment_time if row.appointment_time is not None else row.created_at
    return at


def _grant_at(row: Row[Any]) -> datetime:
    """GRANT_AT in Python."""
    at: datetime = row.paid_at if row.paid_at is not None else row.created_at
    return at


def _time_id_cursor(cursor: str | None, tag: str) -> Resume | None:
    if cursor is None:
        return None
    at, tie = decode_cursor(cursor, tag, 2)
    return Resume(parse_time_part(at), parse_uuid_part(tie))


def _ledger_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    (before_id,) = decode_cursor(cursor, _LEDGER, 1)
    return parse_int_part(before_id)


def _timeline_cursor(cursor: str | None) -> tuple[datetime, str, int | uuid.UUID] | None:
    if cursor is None:
        return None
    at, kind, tie = decode_cursor(cursor, _TIMELINE, 3)
    if kind not in _TYPE_RANK:
        raise InvalidCursor
    if kind == "ledger_entry":
        # Ledger ids travel as strings in the timeline cursor, like every other id.
        if not isinstance(tie, str) or not (tie.isascii() and tie.isdigit()):
            raise InvalidCursor
        return parse_time_part(at), kind, parse_int_part(int(tie))
    return parse_time_part(at), kind, parse_uuid_part(tie)


# Each list's cursor, decoded as its reader decodes it.
_CURSOR_OF: dict[Callable[..., Any], Callable[[str | None], object]] = {
    search: lambda cursor: _time_id_cursor(cursor, _SEARCH),
    entitlements: lambda cursor: _time_id_cursor(cursor, _ENTITLEMENTS),
    appointments_upcoming: lambda cursor: _time_id_cursor(cursor, _UPCOMING),
    appointments_past: lambda cursor: _time_id_cursor(cursor, _PAST),
    ledger: _ledger_cursor,
    payments: lambda cursor: _time_id_cursor(cursor, _PAYMENTS),
    timeline: _timeline_cursor,
}


def check_cursor(reader: Callable[..., Any], cursor: str | None) -> None:
    """Raise InvalidCursor unless `cursor` is None or a cursor of the list `reader` reads.

    For a router that must answer a malformed cursor (422) before it looks any further: api-v2.md
    §2 puts 422 before LOCATION_MISMATCH. The reader decodes the cursor again when it runs.
    """
    _CURSOR_OF[reader](cursor)
