"""The API's check, deduct and contact summary on PostgreSQL: one statement each, authentication
included.

kotally_api_check and kotally_api_deduct (migration 0009) authenticate the token by its keyed
hash, then run kotally_check or kotally_deduct, the same functions every other caller reaches
through ledger/service.py; kotally_api_summary (migration 0010) likewise runs kotally_summary,
the body of contacts/reads.py `summary`. From the event loop, on libpq connections
(db/async_pg.py), in autocommit: the statement is the request's transaction, committed when its
answer arrives.

When the request may not go straight on (rate limiting is on and the limiter must be asked
first; the scope is missing; the body failed; another location), the function answers with the
client's row and does nothing; Python then answers 429, 403, the body's error or
LOCATION_MISMATCH in the order of api-v2.md §2 (api/runtime.py `let_through`), or, once
admitted, calls again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg.types.json import Json
from pydantic import BaseModel
from starlette.requests import Request

from kotally.api.runtime import Runtime, authenticated, let_through
from kotally.auth.dependency import bearer_token, principal_of
from kotally.contacts.schemas import ContactQuery
from kotally.errors import KotallyError, RequestInProgress, Unauthorized
from kotally.idempotency.service import Reply
from kotally.kit.ids import parse_uuid
from kotally.ledger import pg_deduct
from kotally.ledger.schemas import CheckRequest, DeductRequest


def _sql(function: str, arguments: tuple[tuple[str, str], ...]) -> bytes:
    """`SELECT function(gate…, the operation's arguments…)`, each cast (see migration 0009):
    the gate's client id, token hash, whether admitted and location id, then the operation's
    own arguments, those of `arguments` after the location's two."""
    types = ["uuid", "text", "boolean", "text"] + [sql_type for _, sql_type in arguments[2:]]
    casts = [f"${number}::{sql_type}" for number, sql_type in enumerate(types, 1)]
    return f"SELECT {function}({', '.join(casts)})".encode()


_CHECK_NAMES = tuple(name for name, _ in pg_deduct.CHECK_ARGUMENTS[2:])
_DEDUCT_NAMES = tuple(name for name, _ in pg_deduct.ARGUMENTS[2:])
_CHECK_SQL = _sql("kotally_api_check", pg_deduct.CHECK_ARGUMENTS)
_DEDUCT_SQL = _sql("kotally_api_deduct", pg_deduct.ARGUMENTS)
_SUMMARY_SQL = (
    b"SELECT kotally_api_summary($1::uuid, $2::text, $3::boolean, $4::text, $5::text, $6::uuid,"
    b" $7::timestamptz)"
)
# The gate answers "principal" at most twice: before the limiter, and (should the client change
# between the two calls) once more with what changed.
_CALLS_MAX = 3


def _values(args: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    """`args` in the function's order, the payload as json."""
    return tuple(Json(args[name]) if name == "payload" else args[name] for name in names)


async def check(rt: Runtime, request: Request, parsed: BaseModel | KotallyError, cid: str) -> Reply:
    def arguments(_actor: str) -> tuple[Any, ...]:
        assert isinstance(parsed, CheckRequest)
        return _values(pg_deduct.check_arguments(parsed, rt.clock.now(), cid), _CHECK_NAMES)

    answer = await _call(rt, request, "check", _CHECK_SQL, len(_CHECK_NAMES), parsed, arguments)
    return Reply(200, answer["body"])


async def deduct(
    rt: Runtime, request: Request, parsed: BaseModel | KotallyError, cid: str
) -> Reply:
    sent: dict[str, Any] = {}

    def arguments(actor: str) -> tuple[Any, ...]:
        assert isinstance(parsed, DeductRequest)
        sent.update(pg_deduct.request_arguments(parsed, rt.clock.now(), cid, actor))
        return _values(sent, _DEDUCT_NAMES)

    answer = await _call(rt, request, "deduct", _DEDUCT_SQL, len(_DEDUCT_NAMES), parsed, arguments)
    return pg_deduct.reply(answer, sent)  # "in_progress" raises there


async def summary(rt: Runtime, request: Request, query: ContactQuery) -> dict[str, Any] | None:
    """The contact's summary (None: no such contact in the location)."""

    def arguments(_actor: str) -> tuple[Any, ...]:
        return (query.contact_key, parse_uuid(query.contact_key), rt.clock.now())

    answer = await _call(rt, request, "summary", _SUMMARY_SQL, 3, query, arguments)
    body: dict[str, Any] | None = answer["body"]
    return body


async def _call(
    rt: Runtime,
    request: Request,
    scope: str,
    sql: bytes,
    count: int,
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
        own = arguments(actor) if valid else (None,) * count
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
