"""PostgreSQL for the API's hot path: psycopg's libpq connection driven straight from the event
loop, no thread pool, no ORM, no cursor layer.

check-eligibility, deduct and the contact summary are each one statement (ledger/pg_api.py),
run on a connection in autocommit: the statement is its own transaction and has committed when
its answer arrives. Each statement is prepared once per connection and then sent with its
parameters in text format (`encode`, json by kit/jsontext.py); its one value comes back as json
text, read with orjson.
psycopg's AsyncConnection connects and owns the socket; its cursor layer (adapters, generators,
prepared-statement bookkeeping) cost more than half of a call's client CPU
(bench/RESULTS.md), so the query is sent and its result read through `pgconn` directly, as
psycopg itself does underneath.

Connections are kept per event loop (a worker process has one; the tests run apps under many),
at most `db_pool_size` per loop; a request waits for one when all are busy. A connection that
broke, or that is left inside a transaction (a request cancelled while its statement ran), is
closed instead of being reused.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import errors, pq
from psycopg.conninfo import make_conninfo
from psycopg.pq.abc import PGresult
from psycopg.types.json import Json
from sqlalchemy.engine import URL

from kotally.config import Settings
from kotally.db.errors import is_unavailable_state
from kotally.errors import ServiceUnavailable
from kotally.kit import jsontext

CONNECT_TIMEOUT_SECONDS = 5
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK


def _text(value: str) -> bytes:
    if "\x00" in value:  # libpq sends text parameters as C strings: refuse, do not truncate
        raise errors.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return value.encode()


def _json(value: Json) -> bytes:
    return jsontext.dumps(value.obj)


def _bool(value: bool) -> bytes:
    return b"t" if value else b"f"


def _str(value: int | uuid.UUID) -> bytes:
    return str(value).encode()


def _datetime(value: datetime) -> bytes:
    return value.isoformat().encode()


_ENCODERS: dict[type, Any] = {
    str: _text,
    bool: _bool,
    int: _str,
    uuid.UUID: _str,
    datetime: _datetime,
    Json: _json,
}


def encode(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text format; every placeholder carries its cast
    (`$1::uuid`), so the server parses the text as the type the function takes."""
    if value is None:
        return None
    encoder = _ENCODERS.get(type(value))
    if encoder is None:  # a subclass (a str enum, say): the encoder of its base
        encoder = next((e for t, e in _ENCODERS.items() if isinstance(value, t)), None)
        if encoder is None:
            raise TypeError(f"no text format for {type(value).__name__}")
    data: bytes = encoder(value)
    return data


class Connection:
    """One libpq connection of the pool and the statements prepared on it."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self._prepared: dict[bytes, bytes] = {}

    @property
    def broken(self) -> bool:
        return self.conn.broken or self.pgconn.status != pq.ConnStatus.OK

    async def fetch_encoded(self, sql: bytes, params: tuple[bytes | None, ...]) -> Any:
        """The first column of the first row `sql` returns, parsed as json (None for NULL);
        its parameters already in text format (`encode`)."""
        pgconn = self.pgconn
        name = self._prepared.get(sql)
        if name is None:
            name = b"k%d" % len(self._prepared)
            pgconn.send_prepare(name, sql)
            _check(await self._results(), _COMMAND_OK)
            self._prepared[sql] = name
        pgconn.send_query_prepared(name, params)
        result = _check(await self._results(), _TUPLES_OK)
        value = result.get_value(0, 0)
        return None if value is None else orjson.loads(value)

    async def _results(self) -> list[PGresult]:
        """Every result of the statement just sent, waiting on the event loop for the socket."""
        pgconn = self.pgconn
        loop = asyncio.get_running_loop()
        while pgconn.flush() != 0:
            await _ready(loop, pgconn.socket, write=True)
        results: list[PGresult] = []
        while True:
            while pgconn.is_busy():
                await _ready(loop, pgconn.socket, write=False)
                pgconn.consume_input()  # a lost connection raises OperationalError here
            result = pgconn.get_result()
            if result is None:
                return results
            results.append(result)

    def close(self) -> None:
        self.pgconn.finish()


def _check(results: list[PGresult], expected: pq.ExecStatus) -> PGresult:
    """The statement's one result; its error (psycopg's class for the SQLSTATE) raised."""
    for result in results:
        if result.status != expected:
            raise errors.error_from_result(result)
    return results[0]


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> None:
    waiter = loop.create_future()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await waiter
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


@dataclass
class _LoopPool:
    slots: asyncio.Semaphore
    idle: list[Connection] = field(default_factory=list)


class AsyncPostgres:
    def __init__(self, url: URL, settings: Settings) -> None:
        lock_ms = int(settings.db_lock_timeout_seconds * 1000)
        parts: dict[str, Any] = {
            "host": url.host,
            "port": url.port,
            "dbname": url.database,
            "user": url.username,
            "password": url.password,
            **{key: value for key, value in url.query.items() if isinstance(value, str)},
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            # The same session settings as the engine's connections (db/engine.py).
            "options": f"-c lock_timeout={lock_ms} -c idle_in_transaction_session_timeout=60000",
        }
        self._conninfo = make_conninfo(
            "", **{key: value for key, value in parts.items() if value is not None}
        )
        self._size = settings.db_pool_size
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = (
            weakref.WeakKeyDictionary()
        )
        self._open: weakref.WeakSet[Connection] = weakref.WeakSet()

    def _pool(self) -> _LoopPool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _LoopPool(asyncio.Semaphore(self._size))
        return pool

    async def _connect(self) -> Connection:
        conn = Connection(await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True))
        self._open.add(conn)
        return conn

    async def fetch_value(self, sql: bytes, params: tuple[Any, ...]) -> Any:
        """The first column of the one row `sql` returns, as json ($1… its placeholders), on a
        connection of this loop's pool; database outages become 503 ServiceUnavailable."""
        return await self.fetch_encoded(sql, tuple(encode(value) for value in params))

    async def fetch_encoded(self, sql: bytes, params: tuple[bytes | None, ...]) -> Any:
        """`fetch_value` with its parameters already in text format (`encode`)."""
        pool = self._pool()
        await pool.slots.acquire()
        conn: Connection | None = None
        try:
            conn = pool.idle.pop() if pool.idle else await self._connect()
            return await conn.fetch_encoded(sql, params)
        except psycopg.OperationalError as exc:
            if unavailable(exc):
                raise ServiceUnavailable() from exc
            raise
        finally:
            if conn is not None:
                if conn.broken or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                    self._discard(conn)
                else:
                    pool.idle.append(conn)
            pool.slots.release()

    def _discard(self, conn: Connection) -> None:
        self._open.discard(conn)
        conn.close()

    def dispose(self) -> None:
        """Close every connection, from any loop (the loops themselves may be gone)."""
        for conn in list(self._open):
            self._discard(conn)
        self._pools.clear()


def unavailable(exc: psycopg.OperationalError) -> bool:
    """As db/errors.py is_unavailable: a refused connection (no SQLSTATE yet), a lost one, a
    lock wait, no resources."""
    return exc.sqlstate is None or is_unavailable_state(exc.sqlstate)
