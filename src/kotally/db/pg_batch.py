"""PostgreSQL: the requests of one kind that arrive together, sent as one statement.

Every check (and every deduct) a worker receives is queued here. Whenever fewer than
`in_flight` statements of its kind are out (KOTALLY_DB_BATCHES_IN_FLIGHT), everything queued
(up to `max_batch`) goes as the next one: a call of a batch function (migration 0012) whose
parameters are arrays, one element per request, and whose answer is a json array, one answer
per request. A request that arrives when the database is idle goes alone, at once; under load,
the requests that arrived while the earlier statements ran share the next one, its transaction,
its commit and its round trip, sorted by the order each was given (those without one first).
No answer precedes the commit of its statement: the statement runs in autocommit, and its
answers arrive together after it committed.

- Each request's parameters are encoded when it is queued, so a value that cannot be sent
  (a NUL in a text) fails that request alone.
- Each request runs in a subtransaction of its own in the function: an error answers that
  request alone, with psycopg's class for its SQLSTATE, as if its statement had failed. A
  deadlock or serialization failure (which the batch's lock order leaves to a contact reached
  by both of its ids) sends the request again in a later batch, after its subtransaction rolled
  back.
- A statement that fails as a whole (the connection lost, PostgreSQL down) fails every request
  in it: 503 as before; the queue goes on with the next.
- Two requests with one key (a deduct's location and request_id) never share a batch: the
  second goes in a later one and meets the first's committed record, as it would have alone.
- A request cancelled while queued (its client went away) is not sent; one cancelled after its
  batch went out is answered to nobody, its effect committed, as with a lost response.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors

from kotally.db.async_pg import AsyncPostgres, encode, unavailable
from kotally.errors import ServiceUnavailable

# SQLSTATEs after which a request's subtransaction rolled back and it may simply run again.
_AGAIN = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
_ATTEMPTS = 3


@dataclass
class _Request:
    params: tuple[bytes | None, ...]
    order: Any
    key: Hashable | None
    future: asyncio.Future[Any]
    attempts: int = 0


@dataclass
class _LoopState:
    queue: list[_Request] = field(default_factory=list)
    out: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _fail(batch: list[_Request], exc: BaseException | None) -> None:
    """Every request of `batch` not yet answered gets `exc` (None: cancelled)."""
    for request in batch:
        if request.future.done():
            continue
        if exc is None:
            request.future.cancel()
        elif isinstance(exc, ServiceUnavailable):
            request.future.set_exception(ServiceUnavailable())  # one each: its own traceback
        else:
            request.future.set_exception(exc)


def _order(request: _Request) -> tuple[bool, Any]:
    """Where a request goes in its batch: those without an order (a body that failed, which the
    gate turns back) first, then by order."""
    return (request.order is not None, () if request.order is None else request.order)


def _element(value: bytes | None) -> bytes:
    """One element of an array in PostgreSQL's text format: quoted, `"` and `\\` escaped."""
    if value is None:
        return b"NULL"
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def array(values: list[bytes | None]) -> bytes:
    """An array literal of already encoded values (see `encode`)."""
    return b"{" + b",".join([_element(value) for value in values]) + b"}"


def item_error(answer: dict[str, Any]) -> Exception:
    """The exception a request's error answer stands for: psycopg's class for its SQLSTATE
    (503 ServiceUnavailable for an outage or a lock wait, as for a statement of its own)."""
    state: str = answer["state"]
    cls: type[psycopg.Error] = psycopg.DatabaseError
    for code in (state, state[:2] + "000"):  # the SQLSTATE's class, else its class of codes
        try:
            cls = errors.lookup(code)
            break
        except KeyError:
            continue
    exc = cls(answer["message"])
    if isinstance(exc, psycopg.OperationalError) and unavailable(exc):
        return ServiceUnavailable()
    return exc


class Batches:
    """The calls of one batch function: `sql` takes one array per parameter, then `shared`."""

    def __init__(
        self,
        pg: AsyncPostgres,
        sql: bytes,
        *,
        shared: tuple[Any, ...] = (),
        max_batch: int,
        in_flight: int,
    ) -> None:
        self._pg = pg
        self._sql = sql
        self._shared = tuple(encode(value) for value in shared)
        self._max_batch = max_batch
        self._in_flight = in_flight
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        # For tests: statements sent, the most requests in one, requests sent again.
        self.batches = 0
        self.largest = 0
        self.sent_again = 0

    async def call(
        self, params: tuple[Any, ...], *, order: Any = None, key: Hashable | None = None
    ) -> Any:
        """This request's answer once its batch committed. `order`: where it goes in its
        batch (the items are sorted by it); `key`: no two requests with one key share one."""
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        request = _Request(tuple(encode(v) for v in params), order, key, loop.create_future())
        state.queue.append(request)
        if state.out < self._in_flight:
            self._start(loop, state)
        return await request.future

    def _start(self, loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
        state.out += 1
        task = loop.create_task(self._send(state))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    async def _send(self, state: _LoopState) -> None:
        """Send batches while requests wait; the slot is let go when the queue is empty."""
        try:
            while batch := self._take(state):
                try:
                    await self._run(state, batch)
                except asyncio.CancelledError:
                    _fail(batch, None)
                    raise
                except Exception as exc:  # a statement that failed: every request of it gets it
                    _fail(batch, exc)
        finally:
            state.out -= 1

    def _take(self, state: _LoopState) -> list[_Request]:
        batch: list[_Request] = []
        keys: set[Hashable] = set()
        left: list[_Request] = []
        for request in state.queue:
            if request.future.done():  # cancelled while queued: never sent
                continue
            if len(batch) == self._max_batch or (request.key is not None and request.key in keys):
                left.append(request)
                continue
            if request.key is not None:
                keys.add(request.key)
            batch.append(request)
        state.queue = left
        batch.sort(key=_order)
        return batch

    async def _run(self, state: _LoopState, batch: list[_Request]) -> None:
        self.batches += 1
        self.largest = max(self.largest, len(batch))
        columns = zip(*(request.params for request in batch), strict=True)
        params = (*(array(list(column)) for column in columns), *self._shared)
        answers = await self._pg.fetch_encoded(self._sql, params)
        again: list[_Request] = []
        for request, answer in zip(batch, answers, strict=True):
            if request.future.done():
                continue
            if answer is not None and answer.get("k") == "error":
                request.attempts += 1
                if answer["state"] in _AGAIN and request.attempts < _ATTEMPTS:
                    again.append(request)
                    self.sent_again += 1
                else:
                    request.future.set_exception(item_error(answer))
            else:
                request.future.set_result(answer)
        state.queue[:0] = again
