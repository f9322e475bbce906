"""db/pg_batch.py and migration 0012: PostgreSQL's checks and deducts sent in batches.

The queue itself against a stand-in for the database (which requests share a statement, in which
order, and what each is answered when something fails); then the batch functions on PostgreSQL:
array parameters, a failing request leaving the others and nothing of its own, and two workers'
batches on the same contacts never deadlocking nor spending a credit twice.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from psycopg import errors
from psycopg.types.json import Json

from kotally.api.runtime import Runtime
from kotally.app import create_app
from kotally.auth.dependency import bearer_token
from kotally.config import Settings
from kotally.db.async_pg import encode
from kotally.db.engine import Database
from kotally.db.pg_batch import Batches, array
from kotally.errors import ServiceUnavailable
from kotally.kit.clock import FrozenClock
from kotally.ledger import pg_deduct
from kotally.ledger.schemas import DeductRequest
from tests.api.conftest import DEDUCT, Api, build_client

# --- the queue, against a stand-in -------------------------------------------------------------

_ELEMENT = re.compile(rb'NULL|"((?:[^"\\]|\\.)*)"')


def _column(literal: bytes) -> list[bytes | None]:
    """The elements of an array literal as `array` writes them (the database parses them below)."""
    return [
        None if match.group(0) == b"NULL" else re.sub(rb"\\(.)", rb"\1", match.group(1))
        for match in _ELEMENT.finditer(literal[1:-1])
    ]


class FakePostgres:
    """Answers each request of a batch with `answer(first parameter)`; holds each statement
    until `release` is set, so that the test decides what arrives meanwhile."""

    def __init__(self, answer: Callable[[bytes | None], Any] | None = None) -> None:
        self.answer = answer or (lambda value: {"k": "done", "v": value and value.decode()})
        self.sent: list[list[bytes | None]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail: BaseException | None = None

    async def fetch_encoded(self, sql: bytes, params: tuple[bytes | None, ...]) -> Any:
        assert sql == b"SELECT f($1::text[], $2::text[], $3::text)"
        assert params[-1] == b"shared"
        firsts = _column(params[0]) if params[0] is not None else []
        self.sent.append(firsts)
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [self.answer(value) for value in firsts]


def _batches(fake: FakePostgres, *, in_flight: int = 1, max_batch: int = 10) -> Batches:
    pg: Any = fake
    return Batches(
        pg,
        b"SELECT f($1::text[], $2::text[], $3::text)",
        shared=("shared",),
        max_batch=max_batch,
        in_flight=in_flight,
    )


async def _queued(*calls: Any) -> list[asyncio.Task[Any]]:
    tasks = [asyncio.ensure_future(call) for call in calls]
    await asyncio.sleep(0)  # every call queued
    return tasks


async def test_requests_that_arrive_together_share_the_next_statement(anyio_backend: str) -> None:
    fake = FakePostgres()
    batches = _batches(fake)
    fake.release.clear()
    first = await _queued(batches.call(("a", "x")))
    rest = await _queued(*(batches.call((name, "x")) for name in ("b", "c", "d")))
    assert fake.sent == [[b"a"]]  # alone, at once: nothing else was waiting
    fake.release.set()
    answers = await asyncio.gather(*first, *rest)
    assert [answer["v"] for answer in answers] == ["a", "b", "c", "d"]
    assert fake.sent == [[b"a"], [b"b", b"c", b"d"]]
    assert (batches.batches, batches.largest) == (2, 3)


async def test_a_batch_is_sorted_by_order_and_holds_one_request_per_key(
    anyio_backend: str,
) -> None:
    fake = FakePostgres()
    batches = _batches(fake, max_batch=3)
    fake.release.clear()
    tasks = await _queued(batches.call(("a", None)))
    tasks += await _queued(
        batches.call(("y", None), order="2", key="k1"),
        batches.call(("x", None), order="1", key="k1"),  # k1 again: the next statement
        batches.call(("w", None), order="0", key="k2"),
        batches.call(("v", None), order="9", key="k3"),
        batches.call(("u", None), order="5", key="k4"),  # past max_batch: the next statement
    )
    fake.release.set()
    answers = await asyncio.gather(*tasks)
    assert [answer["v"] for answer in answers] == ["a", "y", "x", "w", "v", "u"]
    assert fake.sent == [[b"a"], [b"w", b"y", b"v"], [b"x", b"u"]]


async def test_requests_without_an_order_share_a_batch_with_ordered_ones(
    anyio_backend: str,
) -> None:
    """A deduct whose body failed has no contact to be sorted by; it goes first."""
    fake = FakePostgres()
    batches = _batches(fake)
    fake.release.clear()
    tasks = await _queued(batches.call(("a", None)))
    tasks += await _queued(
        batches.call(("b", None), order=("bc2", "ghl")),
        batches.call(("c", None)),
        batches.call(("d", None), order=("bc1", "ghl")),
    )
    fake.release.set()
    answers = await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    assert [answer["v"] for answer in answers] == ["a", "b", "c", "d"]
    assert fake.sent == [[b"a"], [b"c", b"d", b"b"]]


async def test_an_error_answers_its_request_alone(anyio_backend: str) -> None:
    deadlocks: Counter[str] = Counter()

    def answer(value: bytes | None) -> Any:
        name = (value or b"").decode()
        if name == "duplicate":
            return {"k": "error", "state": "23505", "message": "duplicate key"}
        if name == "lock-wait":
            return {"k": "error", "state": "55P03", "message": "lock timeout"}
        if name == "unknown":
            return {"k": "error", "state": "22ZZZ", "message": "a code psycopg does not know"}
        if name.startswith("deadlock"):
            deadlocks[name] += 1
            if name == "deadlock-always" or deadlocks[name] == 1:
                return {"k": "error", "state": "40P01", "message": "deadlock detected"}
        return {"k": "done", "v": name}

    batches = _batches(FakePostgres(answer))
    outcomes = await asyncio.gather(
        *(
            batches.call((name, None))
            for name in (
                "ok",
                "duplicate",
                "lock-wait",
                "deadlock-once",
                "deadlock-always",
                "unknown",
            )
        ),
        return_exceptions=True,
    )
    assert outcomes[0] == {"k": "done", "v": "ok"}
    assert isinstance(outcomes[1], errors.UniqueViolation)
    assert isinstance(outcomes[2], ServiceUnavailable)  # as for a statement of its own
    assert outcomes[3] == {"k": "done", "v": "deadlock-once"}  # rolled back, sent again
    assert isinstance(outcomes[4], errors.DeadlockDetected)  # not forever
    assert isinstance(outcomes[5], errors.DataException)  # its class of codes
    assert deadlocks == {"deadlock-once": 2, "deadlock-always": 3}


@pytest.mark.parametrize("failure", [ServiceUnavailable(), RuntimeError("boom")])
async def test_a_failed_statement_fails_every_request_in_it(
    failure: Exception, anyio_backend: str
) -> None:
    fake = FakePostgres()
    fake.fail = failure
    batches = _batches(fake)
    outcomes = await asyncio.gather(
        *(batches.call((name, None)) for name in "abc"), return_exceptions=True
    )
    assert [type(outcome) for outcome in outcomes] == [type(failure)] * 3
    fake.fail = None
    assert (await batches.call(("d", None)))["v"] == "d"  # the queue goes on


async def test_a_request_cancelled_while_queued_is_never_sent(anyio_backend: str) -> None:
    fake = FakePostgres()
    batches = _batches(fake)
    fake.release.clear()
    (first,) = await _queued(batches.call(("a", None)))
    gone, kept = await _queued(batches.call(("gone", None)), batches.call(("kept", None)))
    gone.cancel()
    fake.release.set()
    assert (await first)["v"] == "a"
    assert (await kept)["v"] == "kept"
    assert fake.sent == [[b"a"], [b"kept"]]


async def test_a_value_that_cannot_be_sent_fails_its_request_alone(anyio_backend: str) -> None:
    fake = FakePostgres()
    batches = _batches(fake)
    with pytest.raises(errors.DataError):
        await batches.call(("a\x00b", None))
    assert fake.sent == []
    assert (await batches.call(("c", None)))["v"] == "c"


# --- on PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def on_postgresql(settings: Settings) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the batch functions are PostgreSQL's")


TRICKY = ["", "plain", 'a "quoted" word', "back\\slash", "{brace,comma}", "NULL", "é ✓", " pad "]


async def test_array_parameters_round_trip(
    on_postgresql: None, db: Database, anyio_backend: str
) -> None:
    pg = db.async_postgres()
    assert pg is not None
    texts = [*TRICKY, None]
    got = await pg.fetch_encoded(
        b"SELECT to_json($1::text[])", (array([encode(value) for value in texts]),)
    )
    assert got == texts
    documents = [Json({"q": '"', "b": "\\", "n": None, "l": [1, "}"]}), Json("NULL"), None]
    got = await pg.fetch_encoded(
        b"SELECT array_to_json($1::json[])", (array([encode(value) for value in documents]),)
    )
    assert got == [{"q": '"', "b": "\\", "n": None, "l": [1, "}"]}, "NULL", None]


def _runtime(app: FastAPI) -> Runtime:
    rt: Runtime = app.state.kotally
    return rt


def _deduct_params(
    rt: Runtime, token: str, clock: FrozenClock, body: dict[str, Any], **override: Any
) -> tuple[Any, ...]:
    """What ledger/pg_api.py sends for `body`, admitted, with `override` in its arguments."""
    client_id, secret = bearer_token(f"Bearer {token}")
    req = DeductRequest.model_validate(body)
    args = pg_deduct.request_arguments(req, clock.now(), "cid-batch", f"api:{client_id}")
    args.update(override)
    names = [name for name, _ in pg_deduct.ARGUMENTS[2:-1]]
    own = tuple(Json(args[name]) if name == "payload" else args[name] for name in names)
    return (client_id, rt.authenticator.token_hash(secret), True, req.location_id, *own)


def _scalar(settings: Settings, sql: str, *params: Any) -> Any:
    with psycopg.connect(settings.database_url.replace("+psycopg", "")) as conn:
        row = conn.execute(sql, params).fetchone()
        assert row is not None
        return row[0]


async def test_a_failing_deduct_leaves_the_others_and_nothing_of_its_own(
    on_postgresql: None,
    app: FastAPI,
    api: Api,
    token: str,
    clock: FrozenClock,
    api_settings: Settings,
) -> None:
    """One batch: a deduct whose claim fails (its record id taken), one whose booking fails
    (its appointment id taken), and two that go through. Each failure is that request's alone,
    and leaves no claim and no entry behind; the same requests sent again then go through."""
    assert (await api.grant()).status_code == 200
    first = (await api.deduct(request_id="taken", external_ref="bk-taken")).json()
    assert first["reason_code"] == "deducted"
    record_id = _scalar(
        api_settings, "SELECT id FROM idempotency_records WHERE request_id = 'taken'"
    )
    appointment_id = _scalar(
        api_settings, "SELECT id FROM appointments WHERE external_ref = 'bk-taken'"
    )
    rt = _runtime(app)
    assert rt.pg_batches is not None
    batches = rt.pg_batches.deduct
    bodies = {
        name: {**DEDUCT, "request_id": name, "external_ref": f"bk-{name}"}
        for name in ("ok-1", "bad-claim", "bad-booking", "ok-2")
    }
    params = {name: _deduct_params(rt, token, clock, body) for name, body in bodies.items()}
    params["bad-claim"] = _deduct_params(rt, token, clock, bodies["bad-claim"], record_id=record_id)
    params["bad-booking"] = _deduct_params(
        rt, token, clock, bodies["bad-booking"], appointment_id=appointment_id
    )
    sent = batches.batches
    outcomes = await asyncio.gather(
        *(batches.call(p, order=name, key=name) for name, p in params.items()),
        return_exceptions=True,
    )
    assert batches.batches == sent + 1  # one statement
    answers = dict(zip(params, outcomes, strict=True))
    assert isinstance(answers["bad-claim"], errors.UniqueViolation)
    assert isinstance(answers["bad-booking"], errors.UniqueViolation)
    for name in ("ok-1", "ok-2"):
        answer = answers[name]
        assert isinstance(answer, dict)
        assert answer["body"]["reason_code"] == "deducted"
    for name in ("bad-claim", "bad-booking"):
        for table in ("idempotency_records", "ledger_entries"):
            count = _scalar(
                api_settings,
                f"SELECT count(*) FROM {table} WHERE request_id = %s",
                name,
            )
            assert count == 0, (name, table)
    # Sent again (new ids, as a client's retry gets): both apply once.
    for name in ("bad-claim", "bad-booking"):
        again = (await api.post("/api/v2/entitlements/deduct", bodies[name])).json()
        assert again["reason_code"] == "deducted"
    assert await api.balance() == 10 - 5


async def test_two_workers_batches_never_deadlock_nor_spend_twice(
    on_postgresql: None,
    app: FastAPI,
    api: Api,
    api_settings: Settings,
    clock: FrozenClock,
    db: Database,
    token: str,
) -> None:
    """Two apps on one database stand for two server workers, each batching its own requests.
    Deducts on four contacts in every order, each request_id sent two or three times to either
    worker at once: each request_id spends once, every send gets the same answer, the balances
    add up, and no request met a deadlock (PostgreSQL would have failed one of them)."""
    contacts = [f"batch-c{n}" for n in range(4)]
    for contact in contacts:
        for _ in range(3):
            assert (await api.grant(ghl_contact_id=contact)).status_code == 200
    other = Database(api_settings)
    other_app = create_app(api_settings, clock=clock, db=other)
    try:
        async with build_client(other_app) as http:
            workers = [api, Api(http, token)]
            plan = [
                (f"batch-r{n}", random.choice(contacts))
                for n in range(120)  # 4 x 30 credits: some are refused
            ]
            sends = [(rid, contact) for rid, contact in plan for _ in range(random.randint(2, 3))]
            random.shuffle(sends)
            responses = await asyncio.gather(
                *(
                    random.choice(workers).deduct(request_id=rid, ghl_contact_id=contact)
                    for rid, contact in sends
                )
            )
    finally:
        other.dispose()
    answers: dict[str, set[str]] = {}
    for (rid, _), response in zip(sends, responses, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        answers.setdefault(rid, set()).add(f"{body['reason_code']} {body.get('balance_after')}")
    assert all(len(seen) == 1 for seen in answers.values()), answers
    spent = Counter(contact for rid, contact in plan if "deducted" in next(iter(answers[rid])))
    for contact in contacts:
        entries = _scalar(
            api_settings,
            "SELECT count(*) FROM ledger_entries e JOIN contacts c ON c.id = e.contact_id"
            " WHERE c.ghl_contact_id = %s AND e.kind = 'deduct'",
            contact,
        )
        assert entries == spent[contact]
        assert await api.balance(ghl_contact_id=contact) == 30 - spent[contact]
    for worker in (app, other_app):
        batches = _runtime(worker).pg_batches
        assert batches is not None
        assert batches.deduct.largest > 1  # batches were formed
        assert batches.deduct.sent_again == 0  # no deadlock to roll back and send again


async def test_deducts_whose_body_failed_share_batches_with_valid_ones(
    on_postgresql: None, api: Api
) -> None:
    """A body that failed (422, answered after the gate) and valid deducts arrive together."""
    assert (await api.grant()).status_code == 200
    sends = [api.deduct(amount=0 if n % 3 == 0 else 1) for n in range(9)]
    responses = await asyncio.wait_for(asyncio.gather(*sends), timeout=60)
    codes = sorted(response.json()["reason_code"] for response in responses)
    assert codes == ["VALIDATION_ERROR"] * 3 + ["deducted"] * 6
    assert await api.balance() == 10 - 6
