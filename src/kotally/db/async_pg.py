"""PostgreSQL for the API's hot path: psycopg's async driver, no thread pool, no ORM.

check-eligibility and deduct are each one statement (ledger/pg_api.py), run on a connection in
autocommit: the statement is its own transaction and has committed when its answer arrives.
Connections are kept per event loop (a worker process has one; the tests run apps under many),
at most `db_pool_size` per loop; a request waits for one when all are busy. A connection that
broke, or that is left inside a transaction, is closed instead of being reused.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg import pq
from psycopg.conninfo import make_conninfo
from psycopg.types.json import set_json_loads
from sqlalchemy.engine import URL

from kotally.config import Settings
from kotally.db.errors import is_unavailable_state
from kotally.errors import ServiceUnavailable

CONNECT_TIMEOUT_SECONDS = 5


@dataclass
class _LoopPool:
    slots: asyncio.Semaphore
    idle: list[psycopg.AsyncConnection[Any]] = field(default_factory=list)


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
        self._open: weakref.WeakSet[psycopg.AsyncConnection[Any]] = weakref.WeakSet()

    def _pool(self) -> _LoopPool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _LoopPool(asyncio.Semaphore(self._size))
        return pool

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, prepare_threshold=0
        )
        set_json_loads(orjson.loads, conn)
        self._open.add(conn)
        return conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of this loop's pool; database outages become 503 ServiceUnavailable."""
        pool = self._pool()
        async with pool.slots:
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                conn = pool.idle.pop() if pool.idle else await self._connect()
                yield conn
            except psycopg.OperationalError as exc:
                if _unavailable(exc):
                    raise ServiceUnavailable() from exc
                raise
            finally:
                if conn is not None:
                    if conn.broken or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                        self._discard(conn)
                    else:
                        pool.idle.append(conn)

    async def fetch_value(self, sql: bytes, params: tuple[Any, ...]) -> Any:
        """The first column of the one row `sql` returns."""
        async with self.connection() as conn:
            cursor = await conn.execute(sql, params, prepare=True)
            row = await cursor.fetchone()
        assert row is not None
        return row[0]

    def _discard(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._open.discard(conn)
        conn.pgconn.finish()

    def dispose(self) -> None:
        """Close every connection, from any loop (the loops themselves may be gone)."""
        for conn in list(self._open):
            self._discard(conn)
        self._pools.clear()


def _unavailable(exc: psycopg.OperationalError) -> bool:
    """As db/errors.py is_unavailable: a refused connection (no SQLSTATE yet), a lost one, a
    lock wait, no resources."""
    return exc.sqlstate is None or is_unavailable_state(exc.sqlstate)
