"""The deduct and the check on PostgreSQL: one call of the SQL function kotally_deduct or
kotally_check (migrations 0008, 0009) in the caller's session.

It claims the request_id, takes the credits, records the booking and stores the answer in one
round trip. SQLite runs the same steps as raw sqlite3 statements in ledger/sqlite_ops.py, with the
same arguments and the same answer; this module binds the arguments (`arguments`, both
databases') and turns either's answer into the Reply or error (`reply`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON

from kotally.db.types import UTCDateTime
from kotally.errors import RequestInProgress
from kotally.idempotency.service import Reply, fingerprint, replay
from kotally.kit.ids import new_id
from kotally.ledger.context import LedgerContext, LocationView
from kotally.ledger.outcomes import MESSAGES
from kotally.ledger.schemas import CheckRequest, DeductRequest

# The function's arguments and their types, in its order (each cast, so that a driver's choice
# of type for a value, int2 or int8 for an int, say, cannot change which function is called).
ARGUMENTS = (
    ("location_id", "text"),
    ("suspended", "boolean"),
    ("request_id", "text"),
    ("fingerprint", "text"),
    ("payload", "json"),
    ("record_id", "uuid"),
    ("appointment_id", "uuid"),
    ("contact_field", "text"),
    ("contact_value", "text"),
    ("config_id", "text"),
    ("calendar_id", "text"),
    ("amount", "integer"),
    ("external_ref", "text"),
    ("appointment_time", "timestamptz"),
    ("now", "timestamptz"),
    ("correlation_id", "text"),
    ("actor", "text"),
    ("messages", "json"),
)


_CALL = (
    text(
        "SELECT kotally_deduct({})".format(
            ", ".join(f"CAST(:{name} AS {sql_type})" for name, sql_type in ARGUMENTS)
        )
    )
    .bindparams(
        bindparam("payload", type_=JSON),
        bindparam("appointment_time", type_=UTCDateTime),
        bindparam("now", type_=UTCDateTime),
    )
    .columns()
)
# The check's function (migration 0009): the same selection as the deduct's, no lock.
CHECK_ARGUMENTS = (
    ("location_id", "text"),
    ("suspended", "boolean"),
    ("contact_field", "text"),
    ("contact_value", "text"),
    ("config_id", "text"),
    ("calendar_id", "text"),
    ("amount", "integer"),
    ("now", "timestamptz"),
    ("correlation_id", "text"),
    ("messages", "json"),
)
_CHECK = text(
    "SELECT kotally_check({})".format(
        ", ".join(f"CAST(:{name} AS {sql_type})" for name, sql_type in CHECK_ARGUMENTS)
    )
).bindparams(bindparam("now", type_=UTCDateTime))
# The messages of the refusals, sent with each call: the SQL function has no copy of its own.
MESSAGES_JSON = json.dumps(MESSAGES, separators=(",", ":"))


def arguments(ctx: LedgerContext, req: DeductRequest) -> dict[str, Any]:
    """The function's arguments for this request, `payload` as a dict."""
    return arguments_for(ctx.location, req, ctx.clock.now(), ctx.correlation_id, ctx.actor)


def arguments_for(
    location: LocationView, req: DeductRequest, now: datetime, correlation_id: str, actor: str
) -> dict[str, Any]:
    """`arguments` without a LedgerContext: for a caller that has no session."""
    return {**_of_location(location), **request_arguments(req, now, correlation_id, actor)}


def request_arguments(
    req: DeductRequest, now: datetime, correlation_id: str, actor: str
) -> dict[str, Any]:
    """The deduct's arguments but the location's (ARGUMENTS[2:]): what the API sends once its
    gate has found the location (ledger/pg_api.py)."""
    contact = req.contact
    payload = req.payload()
    return {
        "request_id": req.request_id,
        "fingerprint": fingerprint("deduct", payload),
        "payload": payload,
        "record_id": new_id(),
        "appointment_id": new_id(),
        "contact_field": contact.field,
        "contact_value": contact.value,
        "config_id": req.product_config_id,
        "calendar_id": req.calendar_id,
        "amount": req.amount,
        "external_ref": req.external_ref,
        "appointment_time": req.appointment_time,
        "now": now,
        "correlation_id": correlation_id,
        "actor": actor,
        "messages": MESSAGES_JSON,
    }


def check_arguments(req: CheckRequest, now: datetime, correlation_id: str) -> dict[str, Any]:
    """The check's arguments but the location's (CHECK_ARGUMENTS[2:])."""
    contact = req.contact
    return {
        "contact_field": contact.field,
        "contact_value": contact.value,
        "config_id": req.product_config_id,
        "calendar_id": req.calendar_id,
        "amount": req.amount,
        "now": now,
        "correlation_id": correlation_id,
        "messages": MESSAGES_JSON,
    }


def _of_location(location: LocationView) -> dict[str, Any]:
    """The two arguments every function takes first."""
    return {"location_id": location.id, "suspended": location.billing_status == "suspended"}


def deduct(ctx: LedgerContext, req: DeductRequest) -> Reply:
    """service.deduct on PostgreSQL, in the caller's transaction."""
    args = arguments(ctx, req)
    return reply(call(ctx.session, args), args)


def check(ctx: LedgerContext, req: CheckRequest) -> Reply:
    """service.check on PostgreSQL: the SQL function kotally_check, in the caller's session."""
    args = {
        **_of_location(ctx.location),
        **check_arguments(req, ctx.clock.now(), ctx.correlation_id),
    }
    body: dict[str, Any] = ctx.session.execute(_CHECK, args).scalar_one()
    return Reply(200, body)


def call(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    """The function's answer, in the session's transaction. Through the session, so that what
    the caller added to it is flushed first (as SQLite's deduct flushes it, service.py)."""
    answer: dict[str, Any] = session.execute(_CALL, args).scalar_one()
    return answer


@dataclass(frozen=True)
class _Stored:
    endpoint: str
    fingerprint: str
    payload: dict[str, Any]
    state: str
    status_code: int | None
    response: dict[str, Any] | None


def reply(answer: dict[str, Any], args: dict[str, Any]) -> Reply:
    """The Reply of the answer of the function (or of sqlite_ops.deduct): the body it decided,
    or the replay of the stored one."""
    kind = answer["k"]
    if kind == "done":
        return Reply(200, answer["body"])
    if kind == "existing":
        stored = _Stored(
            answer["endpoint"],
            answer["fingerprint"],
            answer["payload"],
            answer["state"],
            answer["status_code"],
            answer["response"],
        )
        return replay(stored, "deduct", args["fingerprint"], args["payload"])
    raise RequestInProgress()
