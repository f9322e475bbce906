"""The contact summary on SQLite: six raw sqlite3 statements, no ORM.

`reads.summary` (SQLAlchemy, both databases) is the reference: `summary` here must return exactly
its body (same keys in the same order, same values and types, same list orders) for any data;
tests/contacts/test_summary_by_database.py compares the two. The statements are those of
contacts/read_repository.py and contacts/repository.py (find_row_for_read), with the same joins,
the same ORDER BY ... LIMIT keys and so the same indexes (migrations 0002 and 0003).

The forms are contacts/schemas.py's, built from the values as SQLAlchemy stores them on SQLite
(see ledger/sqlite_ops.py) with string slicing, which is exact for them: a uuid is 32 lowercase
hex digits, shown with its dashes as str(uuid.UUID) does; a time is naive UTC text
`YYYY-MM-DD HH:MM:SS.ffffff`, shown as kit.clock.isoformat does (`YYYY-MM-DDTHH:MM:SS.fffZ`, the
milliseconds truncated). Both sort as text as they do as values, so SQL compares and orders them
as the reference does. Slicing in Python costs less than in SQL (the benchmark: 135 lots).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from kotally.contacts.reads import LOTS_SHOWN_MAX, RECENT_ITEMS
from kotally.db.models.entitlement import LIVE_STATUSES
from kotally.kit.ids import parse_uuid
from kotally.ledger.sqlite_ops import execute, timestamp

Body = dict[str, Any]

_LIVE = "(" + ", ".join(f"'{status}'" for status in LIVE_STATUSES) + ")"

# find_row_for_read in one statement: the contact whose Kotally id is the key (if the key is a
# uuid), else the one whose ghl_contact_id is it, else the one whose external_contact_id is it;
# each an index seek. Bound: location_id, contact_uuid, key.
_CONTACT = "id, ghl_contact_id, external_contact_id, email, name, created_at FROM contacts"
CONTACT_SQL = f"""
SELECT id, ghl_contact_id, external_contact_id, email, name, created_at
FROM (
    SELECT 0 AS preference, {_CONTACT} WHERE location_id = :location_id AND id = :contact_uuid
    UNION ALL
    SELECT 1, {_CONTACT} WHERE location_id = :location_id AND ghl_contact_id = :key
    UNION ALL
    SELECT 2, {_CONTACT} WHERE location_id = :location_id AND external_contact_id = :key
)
ORDER BY preference
LIMIT 1
"""  # noqa: S608 (constants only)

# reads._balance_and_lots: the newest LOTS_SHOWN_MAX lots (read_repository.lots) and every
# usable one (read_repository.usable_lots), newest first. Each row says whether its lot is usable
# (the same expression on both sides, so UNION keeps one row a lot), and has its status as
# schemas.lot_status shows it. Bound: location_id, contact_id, now, shown.
_USABLE = (
    f"e.status IN {_LIVE} AND e.effective_at <= :now"
    " AND (e.expires_at IS NULL OR e.expires_at > :now)"
    " AND c.active IS 1 AND e.credits_remaining > 0"
)
_LOTS_OF_CONTACT = f"""
    SELECT e.created_at, e.id, c.config_id, e.status, e.credits_remaining, e.expires_at,
           {_USABLE} AS usable
    FROM entitlements AS e JOIN product_configs AS c ON c.id = e.product_config_id
    WHERE c.location_id = :location_id AND e.location_id = :location_id
      AND e.contact_id = :contact_id"""  # noqa: S608 (constants only)
LOTS_SQL = f"""
SELECT id, config_id,
       CASE WHEN status IN {_LIVE} AND expires_at <= :now THEN 'expired' ELSE status END,
       credits_remaining, expires_at, usable
FROM (
    SELECT * FROM ({_LOTS_OF_CONTACT}
        ORDER BY e.created_at DESC, e.id DESC LIMIT :shown)
    UNION{_LOTS_OF_CONTACT} AND {_USABLE}
)
ORDER BY created_at DESC, id DESC
"""  # noqa: S608 (constants only)

# read_repository.payment_totals. Bound: location_id, contact_id.
TOTALS_SQL = """
SELECT count(id), coalesce(sum(coalesce(amount_cents, 0)), 0), max(coalesce(paid_at, created_at))
FROM grants
WHERE location_id = :location_id AND contact_id = :contact_id
"""

# read_repository.entries: the latest in ledger order. Bound: location_id, contact_id, recent.
ENTRIES_SQL = """
SELECT l.id, l.kind, l.amount, l.entitlement_id, c.config_id, l.balance_after, l.request_id,
       l.external_ref, l.appointment_time, l.correlation_id, l.actor, l.created_at
FROM ledger_entries AS l JOIN product_configs AS c ON c.id = l.product_config_id
WHERE c.location_id = :location_id AND l.location_id = :location_id
  AND l.contact_id = :contact_id
ORDER BY l.id DESC
LIMIT :recent
"""

# read_repository.appointments: the latest by APPOINTMENT_AT (the index's very expression), then
# id. Bound: location_id, contact_id, recent.
APPOINTMENTS_SQL = """
SELECT id, external_ref, calendar_id, appointment_time, status, credits_deducted,
       credits_restored
FROM appointments
WHERE location_id = :location_id AND contact_id = :contact_id
ORDER BY coalesce(appointment_time, created_at) DESC, id DESC
LIMIT :recent
"""

# read_repository.payments: the latest by GRANT_AT (the index's very expression), then id, each
# with its lot. Bound: location_id, contact_id, recent.
PAYMENTS_SQL = """
SELECT g.id, g.external_payment_id, g.provider, g.event_type, g.amount_cents, g.currency,
       g.paid_at, c.config_id, e.id, e.credits_granted
FROM grants AS g
LEFT JOIN entitlements AS e ON e.grant_id = g.id AND e.location_id = :location_id
JOIN product_configs AS c ON c.id = g.product_config_id
WHERE c.location_id = :location_id AND g.location_id = :location_id
  AND g.contact_id = :contact_id
ORDER BY coalesce(g.paid_at, g.created_at) DESC, g.id DESC
LIMIT :recent
"""


def _id(stored: str) -> str:
    """str(uuid.UUID) of a stored uuid."""
    return f"{stored[:8]}-{stored[8:12]}-{stored[12:16]}-{stored[16:20]}-{stored[20:]}"


def _optional_id(stored: str | None) -> str | None:
    return None if stored is None else _id(stored)


def _time(stored: str | None) -> str | None:
    """kit.clock.isoformat of a stored time."""
    return None if stored is None else f"{stored[:10]}T{stored[11:23]}Z"


def summary(
    conn: sqlite3.Connection, location_id: str, contact_key: str, now: datetime
) -> Body | None:
    """reads.summary's body for the contact `contact_key` names, or None if the location has none.

    `now` is the clock's time (reads.summary asks its clock). The statements read one snapshot,
    as reads.summary's unit of work does: the caller's transaction, or (on an autocommit
    connection, such as Database.sqlite_reader) a read transaction of their own.
    """
    if conn.in_transaction:
        return _summary(conn, location_id, contact_key, now)
    execute(conn, "BEGIN")
    try:
        return _summary(conn, location_id, contact_key, now)
    finally:
        execute(conn, "ROLLBACK")  # nothing was written


def _summary(
    conn: sqlite3.Connection, location_id: str, contact_key: str, now: datetime
) -> Body | None:
    contact_uuid = parse_uuid(contact_key)
    found = execute(
        conn,
        CONTACT_SQL,
        {
            "location_id": location_id,
            "contact_uuid": None if contact_uuid is None else contact_uuid.hex,
            "key": contact_key,
        },
    ).fetchone()
    if found is None:
        return None
    contact_id, ghl_contact_id, external_contact_id, email, name, created_at = found
    params = {
        "location_id": location_id,
        "contact_id": contact_id,
        "now": timestamp(now),
        "shown": LOTS_SHOWN_MAX,
        "recent": RECENT_ITEMS,
    }
    lots = execute(conn, LOTS_SQL, params).fetchall()
    count, amount, last_paid_at = execute(conn, TOTALS_SQL, params).fetchone()
    entries = execute(conn, ENTRIES_SQL, params).fetchall()
    bookings = execute(conn, APPOINTMENTS_SQL, params).fetchall()
    paid = execute(conn, PAYMENTS_SQL, params).fetchall()
    return {
        "contact": {
            "id": _id(contact_id),
            "ghl_contact_id": ghl_contact_id,
            "external_contact_id": external_contact_id,
            "email": email,
            "name": name,
            "created_at": _time(created_at),
        },
        "summary": {
            "credits_available": sum(remaining for _, _, _, remaining, _, usable in lots if usable),
            "last_paid_at": _time(last_paid_at),
            "lifetime_value_cents": amount,
            "payment_events_count": count,
            "entitlements": [
                {
                    "id": _id(lot_id),
                    "product_config_id": config_id,
                    "status": status,
                    "credits_remaining": remaining,
                    "expires_at": _time(expires_at),
                }
                for lot_id, config_id, status, remaining, expires_at, _ in lots
            ],
            "recent_ledger": [
                {
                    "id": str(row[0]),
                    "kind": row[1],
                    "amount": row[2],
                    "entitlement_id": _id(row[3]),
                    "product_config_id": row[4],
                    "entitlement_balance_after": row[5],
                    "request_id": row[6],
                    "external_ref": row[7],
                    "appointment_time": _time(row[8]),
                    "correlation_id": row[9],
                    "actor": row[10],
                    "created_at": _time(row[11]),
                }
                for row in entries
            ],
            "recent_appointments": [
                {
                    "id": _id(row[0]),
                    "external_ref": row[1],
                    "calendar_id": row[2],
                    "appointment_time": _time(row[3]),
                    "status": row[4],
                    "credits_deducted": row[5],
                    "credits_restored": row[6],
                }
                for row in bookings
            ],
            "recent_payments": [
                {
                    "id": _id(row[0]),
                    "external_payment_id": row[1],
                    "provider": row[2],
                    "event_type": row[3],
                    "amount_cents": row[4],
                    "currency": row[5],
                    "paid_at": _time(row[6]),
                    "product_config_id": row[7],
                    "entitlement_id": _optional_id(row[8]),
                    "credits_granted": row[9],
                }
                for row in paid
            ],
        },
    }
