"""The deduct and the check on SQLite: a few raw sqlite3 statements, no ORM.

The same steps as the SQL function kotally_deduct on PostgreSQL (migration 0008), with the same
outcomes (api-v2.md §4.5, §5; docs/ledger.md, "Deduct on PostgreSQL"): the deduct looks the
request_id up, reads the selection, the contact and its live lots in one statement, takes the
credits lot by lot with a ledger entry each, records the booking and stores the answer; the check
is one statement. Both run on the driver connection of the caller's transaction (or savepoint)
and never begin or end one. They write every value as SQLAlchemy writes it on SQLite, so the ORM
reads the rows back alike: uuids as 32 hex digits, times as naive UTC text
`YYYY-MM-DD HH:MM:SS.ffffff`, JSON as `json.dumps` text. A sqlite3 error is raised as
SQLAlchemy's, as the ORM's statements raise it.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from kotally.db.models.entitlement import LIVE_STATUSES
from kotally.kit.clock import ensure_utc
from kotally.ledger.context import LocationView
from kotally.ledger.outcomes import Outcome, Refusal, success
from kotally.ledger.schemas import CheckRequest

Params = Mapping[str, Any]

_LIVE_STATUSES = ", ".join(f"'{status}'" for status in LIVE_STATUSES)


def _live(lot: str) -> str:
    """ledger/repository.py live_condition, on the lots named `lot`. Bound: now."""
    return (
        f"{lot}.status IN ({_LIVE_STATUSES}) AND {lot}.effective_at <= :now"
        f" AND ({lot}.expires_at IS NULL OR {lot}.expires_at > :now)"
    )


# What a check and a deduct read before they decide, in one statement: the selected configs
# (selection.py select_configs: the active config `config_id`, or the active configs linked to
# `calendar_id`), whether a config chosen by id is linked to the calendar sent with it, the contact
# (contacts/repository.py _matching: the one whose id in the sent field matches first) and, by
# calendar alone with no live lot, whether it has usable credits in another family
# (repository.has_usable_elsewhere). Bound: location_id, config_id, calendar_id, contact_field,
# contact_value, now. (Each id is unique in a location, so each lookup of the contact finds one
# row at most; the two branches of `selected` never both run, and a config's link to a calendar
# is unique, so UNION ALL has no duplicate to remove.)
_FACTS = """
WITH selected(id) AS (
    SELECT id FROM product_configs
    WHERE :config_id IS NOT NULL AND location_id = :location_id AND config_id = :config_id
      AND active IS 1
    UNION ALL
    SELECT c.id FROM product_configs AS c
    JOIN product_config_links AS l ON l.product_config_id = c.id
    WHERE :config_id IS NULL AND c.location_id = :location_id AND l.location_id = :location_id
      AND l.kind = 'calendar' AND l.value = :calendar_id AND c.active IS 1
), contact(id) AS (
    SELECT CASE WHEN :contact_field = 'ghl_contact_id'
                THEN coalesce({by_ghl}, {by_external})
                ELSE coalesce({by_external}, {by_ghl}) END
)
SELECT
    (SELECT count(*) FROM selected) AS configs,
    (SELECT min(id) FROM selected) AS first_config,
    CASE WHEN :config_id IS NULL OR :calendar_id IS NULL THEN 1 ELSE EXISTS (
        SELECT 1 FROM product_config_links
        WHERE location_id = :location_id AND product_config_id = (SELECT min(id) FROM selected)
          AND kind = 'calendar' AND value = :calendar_id
    ) END AS in_family,
    contact.id AS contact,
    {columns},
    CASE WHEN :config_id IS NULL AND {no_lot} THEN EXISTS (
        SELECT 1 FROM entitlements AS o JOIN product_configs AS c ON c.id = o.product_config_id
        WHERE o.location_id = :location_id AND o.contact_id = contact.id
          AND o.product_config_id NOT IN (SELECT id FROM selected) AND c.active IS 1
          AND o.credits_remaining > 0 AND {live_o}
    ) END AS elsewhere
FROM contact
LEFT JOIN entitlements AS e
    ON e.location_id = :location_id AND e.contact_id = contact.id
   AND e.product_config_id IN (SELECT id FROM selected) AND {live_e}
"""

_CONTACT_BY = "(SELECT id FROM contacts WHERE location_id = :location_id AND {} = :contact_value)"


def _facts(columns: str, no_lot: str) -> str:
    """_FACTS with the columns of the lots, and what `elsewhere` takes for 'no live lot'."""
    return _FACTS.format(
        columns=columns,
        no_lot=no_lot,
        live_o=_live("o"),
        live_e=_live("e"),
        by_ghl=_CONTACT_BY.format("ghl_contact_id"),
        by_external=_CONTACT_BY.format("external_contact_id"),
    )


# The check: the facts, and how many live lots and how many credits.
CHECK_SQL = (
    _facts(
        columns="count(e.id) AS lots, coalesce(sum(e.credits_remaining), 0) AS available",
        no_lot="count(e.id) = 0",
    )
    + "GROUP BY contact.id"
)

# The deduct: the facts with each live lot, in consumption order (repository.CONSUMPTION_ORDER);
# one row with no lot when there is none.
DEDUCT_FACTS_SQL = (
    _facts(
        columns="e.id AS lot, e.product_config_id AS lot_config, e.credits_remaining AS remaining",
        no_lot="e.id IS NULL",
    )
    + "ORDER BY e.expires_at ASC NULLS LAST, e.created_at ASC, e.id ASC"
)

# The request_id's record (idempotency/repository.py get), and the record written once the
# deduct has decided, completed (see `deduct`).
STORED_SQL = """
SELECT endpoint, fingerprint, payload, state, status_code, response FROM idempotency_records
WHERE location_id = :location_id AND request_id = :request_id
"""
RECORD_SQL = """
INSERT INTO idempotency_records
    (id, location_id, request_id, endpoint, fingerprint, payload, state, status_code, response,
     created_at, completed_at)
VALUES (:record_id, :location_id, :request_id, 'deduct', :fingerprint, :payload, 'completed',
        200, :response, :now, :now)
"""

# ledger/lots.py move, for a live lot. A live lot with credits left is active (`kotally verify`
# checks it), so only a lot that runs out changes status, and only then is the status set: an
# UPDATE that sets a column rewrites its entries in every index on it (ix_entitlements_expiry's
# for the status), changed or not.
UPDATE_LOT_SQL = "UPDATE entitlements SET credits_remaining = :remaining WHERE id = :lot"
EXHAUST_LOT_SQL = """
UPDATE entitlements SET credits_remaining = :remaining, status = 'exhausted' WHERE id = :lot
"""
INSERT_ENTRY_SQL = """
INSERT INTO ledger_entries
    (location_id, contact_id, entitlement_id, product_config_id, kind, amount, balance_after,
     request_id, external_ref, appointment_time, correlation_id, actor, created_at)
VALUES (:location_id, :contact_id, :lot, :lot_config, 'deduct', :amount, :remaining,
        :request_id, :external_ref, :appointment_time, :correlation_id, :actor, :now)
"""

# The booking named by external_ref (docs/ledger.md, Appointments): recorded with the request's
# calendar, or the sole calendar of the sole selected config; or, if it is this contact's, added
# to. Another contact's is left as it is.
BOOKING_SQL = """
INSERT INTO appointments
    (id, location_id, contact_id, external_ref, calendar_id, appointment_time, status,
     credits_deducted, credits_restored, created_at, updated_at)
VALUES (:appointment_id, :location_id, :contact_id, :external_ref,
        coalesce(:new_calendar_id, (
            SELECT CASE WHEN count(*) = 1 THEN min(value) END FROM product_config_links
            WHERE location_id = :location_id AND product_config_id = :sole_config
              AND kind = 'calendar')),
        :appointment_time, 'booked', :amount, 0, :now, :now)
ON CONFLICT (location_id, external_ref) DO UPDATE
SET credits_deducted = appointments.credits_deducted + :amount, status = 'booked',
    refusal = NULL, updated_at = :now,
    appointment_time = coalesce(:appointment_time, appointments.appointment_time),
    calendar_id = coalesce(:calendar_id, appointments.calendar_id)
WHERE appointments.contact_id = :contact_id
"""


def timestamp(value: datetime) -> str:
    """A time as SQLAlchemy stores a kotally.db.types.UTCDateTime on SQLite: naive UTC text."""
    v = ensure_utc(value)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    )


def _optional_timestamp(value: datetime | None) -> str | None:
    return None if value is None else timestamp(value)


def _error(sql: str, params: Any, exc: sqlite3.Error, *, many: bool = False) -> BaseException:
    """SQLAlchemy's exception for a sqlite3 error (OperationalError, IntegrityError ...), as
    raised by a statement run through it: the callers' handling of database errors applies."""
    error = DBAPIError.instance(sql, params, exc, sqlite3.Error, ismulti=many)
    assert isinstance(error, BaseException)
    return error


def connection_of(session: Session) -> sqlite3.Connection:
    """The sqlite3 connection of the session's transaction (or savepoint), once what the caller
    added to the session is written: the raw statements see it and share its fate."""
    session.flush()
    return driver_of(session.connection())


def driver_of(connection: Connection) -> sqlite3.Connection:
    """The sqlite3 connection under a SQLAlchemy connection."""
    return cast(sqlite3.Connection, connection.connection.driver_connection)


def execute(
    conn: sqlite3.Connection, sql: str, params: Params | Sequence[Any] = ()
) -> sqlite3.Cursor:
    """`conn.execute`, a sqlite3 error raised as SQLAlchemy's."""
    try:
        return conn.execute(sql, params)
    except sqlite3.Error as exc:
        raise _error(sql, params, exc) from exc


def _execute_many(conn: sqlite3.Connection, sql: str, params: Sequence[Params]) -> None:
    try:
        conn.executemany(sql, params)
    except sqlite3.Error as exc:
        raise _error(sql, list(params), exc, many=True) from exc


@dataclass(frozen=True)
class _Facts:
    configs: int
    first_config: str | None
    in_family: bool
    contact: str | None
    elsewhere: bool

    @classmethod
    def of(cls, row: Sequence[Any]) -> _Facts:
        """From the first four columns and the last of a _FACTS row."""
        return cls(row[0], row[1], bool(row[2]), row[3], bool(row[-1]))


def _refuse_unless_usable(
    facts: _Facts, by_config: bool, lots: int, available: int, amount: int
) -> None:
    """The refusals of the selection, the contact and its balance, in the order of selection.py
    (select_configs, find_contact, refuse_unless_enough), which restore runs too."""
    if facts.configs == 0:
        raise Refusal("CONFIG_NOT_FOUND")
    if by_config and not facts.in_family:
        raise Refusal("SERVICE_FAMILY_MISMATCH")
    if facts.contact is None:
        raise Refusal("NO_ENTITLEMENT")
    if lots == 0:
        if not by_config and facts.elsewhere:
            raise Refusal("SERVICE_FAMILY_MISMATCH")
        raise Refusal("NO_ENTITLEMENT")
    if available < amount:
        raise Refusal("INSUFFICIENT_CREDITS", balance_available=available)


def _selection(
    location_id: str,
    config_id: str | None,
    calendar_id: str | None,
    contact_field: str,
    contact_value: str,
    now: str,
) -> dict[str, Any]:
    return {
        "location_id": location_id,
        "config_id": config_id,
        "calendar_id": calendar_id,
        "contact_field": contact_field,
        "contact_value": contact_value,
        "now": now,
    }


def check(
    conn: sqlite3.Connection,
    *,
    location_id: str,
    suspended: bool,
    config_id: str | None,
    calendar_id: str | None,
    contact_field: str,
    contact_value: str,
    amount: int,
    now: datetime,
    correlation_id: str,
) -> dict[str, Any]:
    """service.check's body: would the contact have enough credits? Changes nothing."""
    try:
        if suspended:
            raise Refusal("BILLING_SUSPENDED")
        params = _selection(
            location_id, config_id, calendar_id, contact_field, contact_value, timestamp(now)
        )
        row = execute(conn, CHECK_SQL, params).fetchone()
        lots, available = row[4], row[5]
        _refuse_unless_usable(_Facts.of(row), config_id is not None, lots, available, amount)
        outcome = success("eligible", balance_after=available - amount)
    except Refusal as refusal:
        outcome = refusal.outcome
    return outcome.body(correlation_id)


def check_request(
    conn: sqlite3.Connection,
    location: LocationView,
    req: CheckRequest,
    now: datetime,
    correlation_id: str,
) -> dict[str, Any]:
    """`check` for a request of the location (service.check, and the API's sqlite_api.check)."""
    contact = req.contact
    return check(
        conn,
        location_id=location.id,
        suspended=location.billing_status == "suspended",
        config_id=req.product_config_id,
        calendar_id=req.calendar_id,
        contact_field=contact.field,
        contact_value=contact.value,
        amount=req.amount,
        now=now,
        correlation_id=correlation_id,
    )


def deduct(conn: sqlite3.Connection, args: dict[str, Any]) -> dict[str, Any]:
    """kotally_deduct's answer for `args` (pg_deduct.arguments), in the caller's transaction.

    The caller's transaction holds SQLite's only write lock (BEGIN IMMEDIATE: a write unit of
    work, or the group-commit writer's batch), so no other transaction can claim the request_id
    between the lookup and the insert: where PostgreSQL claims the record first and completes it
    last, SQLite looks the request_id up and, once the deduct has decided, writes its record
    once, completed. The unique (location_id, request_id) stays the last guard."""
    now = timestamp(args["now"])
    location_id = args["location_id"]
    key = {"location_id": location_id, "request_id": args["request_id"]}
    stored = execute(conn, STORED_SQL, key).fetchone()
    if stored is not None:
        return _existing(stored)
    try:
        outcome = _decide(conn, args, now)
    except Refusal as refusal:
        outcome = refusal.outcome
    body = outcome.body(args["correlation_id"])
    if outcome.stored:
        record = {
            **key,
            "record_id": args["record_id"].hex,
            "fingerprint": args["fingerprint"],
            "payload": json.dumps(args["payload"]),
            "response": json.dumps(body),
            "now": now,
        }
        execute(conn, RECORD_SQL, record)
    return {"k": "done", "body": body}


def _existing(row: Sequence[Any]) -> dict[str, Any]:
    """The answer for a request_id's record (on SQLite, committed or this transaction's)."""
    endpoint, fingerprint, payload, state, status_code, response = row
    return {
        "k": "existing",
        "endpoint": endpoint,
        "fingerprint": fingerprint,
        "payload": json.loads(payload),
        "state": state,
        "status_code": status_code,
        "response": None if response is None else json.loads(response),
    }


def _decide(conn: sqlite3.Connection, args: dict[str, Any], now: str) -> Outcome:
    """The deduct's rules: the refusals in order, or the credits taken and the booking."""
    if args["suspended"]:
        raise Refusal("BILLING_SUSPENDED")
    location_id, amount = args["location_id"], args["amount"]
    params = _selection(
        location_id,
        args["config_id"],
        args["calendar_id"],
        args["contact_field"],
        args["contact_value"],
        now,
    )
    rows = execute(conn, DEDUCT_FACTS_SQL, params).fetchall()
    facts = _Facts.of(rows[0])
    lots = [(row[4], row[5], row[6]) for row in rows if row[4] is not None]
    available = sum(remaining for _, _, remaining in lots)
    _refuse_unless_usable(facts, args["config_id"] is not None, len(lots), available, amount)

    entry = {
        "location_id": location_id,
        "contact_id": facts.contact,
        "request_id": args["request_id"],
        "external_ref": args["external_ref"],
        "appointment_time": _optional_timestamp(args["appointment_time"]),
        "correlation_id": args["correlation_id"],
        "actor": args["actor"],
        "now": now,
    }
    moves: list[dict[str, Any]] = []
    consumed: list[dict[str, Any]] = []
    left = amount
    for lot, lot_config, remaining in lots:
        if left == 0:
            break
        take = min(remaining, left)
        if take == 0:
            continue
        after = remaining - take
        moves.append(
            {**entry, "lot": lot, "lot_config": lot_config, "amount": -take, "remaining": after}
        )
        consumed.append({"entitlement_id": str(uuid.UUID(lot)), "amount": take})
        left -= take
    _execute_many(conn, UPDATE_LOT_SQL, [move for move in moves if move["remaining"]])
    _execute_many(conn, EXHAUST_LOT_SQL, [move for move in moves if not move["remaining"]])
    _execute_many(conn, INSERT_ENTRY_SQL, moves)

    if args["external_ref"] is not None:
        booking = {
            **entry,
            "appointment_id": args["appointment_id"].hex,
            "new_calendar_id": args["calendar_id"] or None,
            "calendar_id": args["calendar_id"],
            "sole_config": facts.first_config if facts.configs == 1 else None,
            "amount": amount,
        }
        execute(conn, BOOKING_SQL, booking)
    return success(
        "deducted",
        balance_after=available - amount,
        entitlement_id=consumed[0]["entitlement_id"],
        consumed=consumed,
    )
