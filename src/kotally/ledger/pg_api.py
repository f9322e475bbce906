"""The API's check and deduct on PostgreSQL: one statement each, authentication included.

kotally_api_check and kotally_api_deduct (migration 0009) authenticate the token by its keyed
hash, then run kotally_check or kotally_deduct, the same functions every other caller reaches
through ledger/service.py. From the event loop, on the async driver (db/async_pg.py), in
autocommit: the statement is the request's transaction, committed when its answer arrives.

When the request may not go straight on (rate limiting is on and the limiter must be asked
first; the scope is missing; the body failed; another location), the function answers with the
client's row and does nothing; Python then answers 429, 403, the body's error or
LOCATION_MISMATCH in the order of api-v2.md §2 (api/runtime.py `admit`), or, once admitted,
calls again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg.types.json import Json
from pydantic import BaseModel
from starlette.requests import Request

from kotally.api.runtime import Runtime, authenticated, let_through
from kotally.auth.dependency import bearer_token, principal_of
from kotally.errors import KotallyError, RequestInProgress, Unauthorized
from kotally.idempotency.service import Reply, fingerprint
from kotally.kit.ids import new_id
from kotally.ledger import pg_deduct
from kotally.ledger.pg_deduct import MESSAGES_JSON
from kotally.ledger.schemas import CheckRequest, DeductRequest

# Arguments common to both, after which each passes its own (see migration 0009).
_GATE = "%s::uuid, %s::text, %s::boolean, %s::text"
_CHECK_SQL = (
    "SELECT kotally_api_check(" + _GATE + ", %s::text, %s::text, %s::text, %s::text, "
    "%s::integer, %s::timestamptz, %s::text, %s::json)"
).encode()
_DEDUCT_SQL = (
    "SELECT kotally_api_deduct(" + _GATE + ", %s::text, %s::text, %s::json, %s::uuid, "
    "%s::uuid, %s::text, %s::text, %s::text, %s::text, %s::integer, %s::text, "
    "%s::timestamptz, %s::timestamptz, %s::text, %s::text, %s::json)"
).encode()
# The gate answers "principal" at most twice: before the limiter, and (should the client change
# between the two calls) once more with what changed.
_CALLS_MAX = 3


def _check_arguments(req: CheckRequest, rt: Runtime, cid: str) -> tuple[Any, ...]:
    contact = req.contact
    return (
        contact.field,
        contact.value,
        req.product_config_id,
        req.calendar_id,
        req.amount,
        rt.clock.now(),
        cid,
        MESSAGES_JSON,
    )


def _deduct_arguments(req: DeductRequest, rt: Runtime, cid: str, actor: str) -> tuple[Any, ...]:
    contact = req.contact
    payload = req.payload()
    return (
        req.request_id,
        fingerprint("deduct", payload),
        Json(payload),
        new_id(),
        new_id(),
        contact.field,
        contact.value,
        req.product_config_id,
        req.calendar_id,
        req.amount,
        req.external_ref,
        req.appointment_time,
        rt.clock.now(),
        cid,
        actor,
        MESSAGES_JSON,
    )


async def check(rt: Runtime, request: Request, parsed: BaseModel | KotallyError, cid: str) -> Reply:
    def arguments(_actor: str) -> tuple[Any, ...]:
        assert isinstance(parsed, CheckRequest)
        return _check_arguments(parsed, rt, cid)

    answer = await _call(rt, request, "check", _CHECK_SQL, parsed, arguments)
    return Reply(200, answer["body"])


async def deduct(
    rt: Runtime, request: Request, parsed: BaseModel | KotallyError, cid: str
) -> Reply:
    sent: dict[str, Any] = {}

    def arguments(actor: str) -> tuple[Any, ...]:
        assert isinstance(parsed, DeductRequest)
        args = _deduct_arguments(parsed, rt, cid, actor)
        sent.update(fingerprint=args[1], payload=args[2].obj)
        return args

    answer = await _call(rt, request, "deduct", _DEDUCT_SQL, parsed, arguments)
    if answer["k"] == "in_progress":
        raise RequestInProgress()
    return pg_deduct.reply(answer, sent)


async def _call(
    rt: Runtime,
    request: Request,
    scope: str,
    sql: bytes,
    parsed: BaseModel | KotallyError,
    arguments: Callable[[str], tuple[Any, ...]],
) -> dict[str, Any]:
    """The operation's answer once the gate let it pass; every refusal before it raised."""
    assert rt.pg is not None
    client_id, token = bearer_token(request.headers.get("authorization"))  # 401 malformed
    gate = (client_id, rt.authenticator.token_hash(token))
    admitted = not rt.limiter.enabled
    valid = not isinstance(parsed, KotallyError)
    location_id = getattr(parsed, "location_id", None) if valid else None
    actor = f"api:{client_id}"
    for _ in range(_CALLS_MAX):
        own = arguments(actor) if valid else (None,) * (sql.count(b"%s") - 4)
        params = (*gate, admitted, location_id, *own)
        answer: dict[str, Any] = await rt.pg.fetch_value(sql, params)
        kind = answer["k"]
        if kind == "unauthorized":
            raise Unauthorized("The bearer token is not valid.")
        authenticated(request, client_id)
        if kind != "principal":
            return answer
        principal = principal_of(
            client_id,
            (
                answer["scopes"],
                answer["rate"],
                answer["location_id"],
                answer["billing_status"],
                answer["window"],
            ),
        )
        # 429 (the limiter asked once), 403, the body's error, LOCATION_MISMATCH; else again.
        let_through(rt, request, principal, scope, parsed, limit=not admitted)
        admitted = True
    raise RequestInProgress()  # the client kept changing under the gate
