"""The deduct on PostgreSQL: one call of the SQL function kotally_deduct (migration 0008).

It does what service.py `_deduct` inside `run_once` does, with the same outcomes, in one round
trip; this module binds its arguments and turns its answer into the same Reply or error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON

from kotally.db.types import UTCDateTime
from kotally.errors import RequestInProgress
from kotally.idempotency.service import Reply, fingerprint, replay
from kotally.kit.ids import new_id
from kotally.ledger.context import LedgerContext
from kotally.ledger.outcomes import MESSAGES
from kotally.ledger.schemas import DeductRequest

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
# The messages of the refusals, sent with each call: the SQL function has no copy of its own.
MESSAGES_JSON = json.dumps(MESSAGES, separators=(",", ":"))


def arguments(ctx: LedgerContext, req: DeductRequest) -> dict[str, Any]:
    """The function's arguments for this request, `payload` as a dict."""
    contact = req.contact
    payload = req.payload()
    return {
        "location_id": ctx.location.id,
        "suspended": ctx.location.billing_status == "suspended",
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
        "now": ctx.clock.now(),
        "correlation_id": ctx.correlation_id,
        "actor": ctx.actor,
        "messages": MESSAGES_JSON,
    }


def deduct(ctx: LedgerContext, req: DeductRequest) -> Reply:
    """service.deduct on PostgreSQL, in the caller's transaction."""
    args = arguments(ctx, req)
    return reply(call(ctx.session, args), args)


def call(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    """The function's answer, in the session's transaction. Through the session, so that what
    the caller added to it is flushed first, as the Python deduct's claim does."""
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
    """The Reply of the function's answer: the body it decided, or the replay of the stored one."""
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
