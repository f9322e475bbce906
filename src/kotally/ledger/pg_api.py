"""The API's check, deduct and contact summary on PostgreSQL: authentication and the work in one
statement.

A check goes to kotally_api_check (migration 0009), a deduct to kotally_api_claim and then
kotally_deduct_claimed (0012): they authenticate the token by its keyed hash, then run
kotally_check, or kotally_deduct's two halves, the same functions every other caller reaches
through ledger/service.py. Checks and deducts travel in batches (ledger/pg_batches.py,
db/pg_batch.py): the requests that arrive together share one statement, each answered from its
own subtransaction. kotally_api_summary (0010) likewise runs kotally_summary, the body of
contacts/reads.py `summary`, one statement per request. From the event loop, on libpq
connections (db/async_pg.py), in autocommit: the statement is the requests' transaction,
committed when their answers arrive.

When the request may not go straight on (rate limiting is on and the limiter must be asked
first; the scope is missing; the body failed; another location), the function answers with the
client's row and does nothing; Python then answers 429, 403, the body's error or
LOCATION_MISMATCH in the order of api-v2.md §2 (api/runtime.py `let_through`), or, once
admitted, calls again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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

# Each request's own arguments, in the function's order; the messages are the batch's.
_CHECK_NAMES = tuple(name for name, _ in pg_deduct.CHECK_ARGUMENTS[2:-1])
_DEDUCT_NAMES = tuple(name for name, _ in pg_deduct.ARGUMENTS[2:-1])
_SUMMARY_SQL = (
    b"SELECT kotally_api_summary($1::uuid, $2::text, $3::boolean, $4::text, $5::text, $6::uuid,"
    b" $7::timestamptz)"
)
# The gate answers "principal" at most twice: before the limiter, and (should the client change
# between the two calls) once more with what changed.
_CALLS_MAX = 3

Send = Callable[[tuple[Any, ...]], Awaitable[Any]]


def _values(args: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    """`args` in the function's order, the payload as json."""
    return tuple(Json(args[name]) if name == "payload" else args[name] for name in names)


async def check(rt: Runtime, request: Request, parsed: BaseModel | KotallyError, cid: str) -> Reply:
    def arguments(_actor: str) -> tuple[Any, ...]:
        assert isinstance(parsed, CheckRequest)
        return _values(pg_deduct.check_arguments(parsed, rt.clock.now(), cid), _CHECK_NAMES)

    assert rt.pg_batches is not None
    send = rt.pg_batches.check.call
    answer = await _call(rt, request, "check", send, len(_CHECK_NAMES), parsed, arguments)
    return Reply(200, answer["body"])


async def deduct(
    rt: Runtime, request: Request, parsed: BaseModel | KotallyError, cid: str
) -> Reply:
    sent: dict[str, Any] = {}

    def arguments(actor: str) -> tuple[Any, ...]:
        assert isinstance(parsed, DeductRequest)
        sent.update(pg_deduct.request_arguments(parsed, rt.clock.now(), cid, actor))
        return _values(sent, _DEDUCT_NAMES)

    assert rt.pg_batches is not None
    batches = rt.pg_batches.deduct
    # Sorted by contact within a batch, so that batches lock contacts in one order; one
    # request_id per batch (db/pg_batch.py). A body that failed has neither.
    order: tuple[str, str] | None = None
    key: tuple[str, str] | None = None
    if isinstance(parsed, DeductRequest):
        order = (parsed.contact.value, parsed.contact.field)
        key = (parsed.location_id, parsed.request_id)

    def send(params: tuple[Any, ...]) -> Awaitable[Any]:
        return batches.call(params, order=order, key=key)

    answer = await _call(rt, request, "deduct", send, len(_DEDUCT_NAMES), parsed, arguments)
    return pg_deduct.reply(answer, sent)  # "in_progress" raises there


async def summary(rt: Runtime, request: Request, query: ContactQuery) -> dict[str, Any] | None:
    """The contact's summary (None: no such contact in the location)."""

    def arguments(_actor: str) -> tuple[Any, ...]:
        return (query.contact_key, parse_uuid(query.contact_key), rt.clock.now())

    assert rt.pg is not None
    pg = rt.pg

    def send(params: tuple[Any, ...]) -> Awaitable[Any]:
        return pg.fetch_value(_SUMMARY_SQL, params)

    answer = await _call(rt, request, "summary", send, 3, query, arguments)
    body: dict[str, Any] | None = answer["body"]
    return body


async def _call(
    rt: Runtime,
    request: Request,
    scope: str,
    send: Send,
    count: int,
    parsed: BaseModel | KotallyError,
    arguments: Callable[[str], tuple[Any, ...]],
) -> dict[str, Any]:
    """The operation's answer once the gate let it pass; every refusal before it raised."""
    client_id, token = bearer_token(request.headers.get("authorization"))  # 401 malformed
    gate = (client_id, rt.authenticator.token_hash(token))
    admitted = not rt.limiter.enabled
    valid = not isinstance(parsed, KotallyError)
    location_id = getattr(parsed, "location_id", None) if valid else None
    actor = f"api:{client_id}"
    for _ in range(_CALLS_MAX):
        own = arguments(actor) if valid else (None,) * count
        params = (*gate, admitted, location_id, *own)
        answer: dict[str, Any] = await send(params)
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
