"""db/async_pg.py: the hot path's statements on libpq straight from the event loop. Parameters in
text format, errors as psycopg's classes, and a connection that broke or was left mid-statement
never reused."""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Json

from kotally.config import Settings
from kotally.db.async_pg import AsyncPostgres, encode
from kotally.db.engine import Database
from kotally.errors import ServiceUnavailable

BIG = 2**70


class Colour(enum.StrEnum):
    RED = "red"


def test_parameters_in_text_format() -> None:
    some = uuid.UUID("12345678-1234-4234-8234-123456789abc")
    at = datetime(2026, 4, 16, 9, 30, 0, 123456, tzinfo=UTC)
    assert encode(None) is None
    assert encode("café") == "café".encode()
    assert encode(True) == b"t"
    assert encode(False) == b"f"
    assert encode(-42) == b"-42"
    assert encode(some) == b"12345678-1234-4234-8234-123456789abc"
    assert encode(at) == b"2026-04-16T09:30:00.123456+00:00"
    assert encode(Json({"a": [1, None, "x"]})) == b'{"a":[1,null,"x"]}'
    assert encode(Json({"big": BIG})) == b'{"big":%d}' % BIG  # past orjson's 64 bits
    assert encode(Colour.RED) == b"red"  # a subclass: its base's encoder
    with pytest.raises(TypeError):
        encode(1.5)


def test_a_nul_in_text_is_refused_not_truncated() -> None:
    """libpq sends text parameters as C strings: "ab\\0cd" would arrive as "ab"."""
    with pytest.raises(errors.DataError):
        encode("ab\x00cd")


@pytest.fixture
async def pool(settings: Settings, anyio_backend: str) -> AsyncIterator[AsyncPostgres]:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the async driver is PostgreSQL's")
    db = Database(settings)
    pg = db.async_postgres()
    assert pg is not None
    yield pg
    db.dispose()


async def _backend_pid(pool: AsyncPostgres) -> int:
    pid: int = await pool.fetch_value(b"SELECT to_json(pg_backend_pid())", ())
    return pid


async def test_values_round_trip(pool: AsyncPostgres) -> None:
    sql = (
        b"SELECT json_build_object('t', $1::text, 'n', $2::integer, 'b', $3::boolean,"
        b" 'j', $4::json)"
    )
    value = await pool.fetch_value(sql, ("é'; --", 7, True, Json({"k": [1, 2]})))
    assert value == {"t": "é'; --", "n": 7, "b": True, "j": {"k": [1, 2]}}
    assert await pool.fetch_value(b"SELECT NULL::json", ()) is None
    # Prepared once per connection, then reused: the same answer again on the same backend.
    assert await pool.fetch_value(sql, ("x", 0, False, Json(None))) == {
        "t": "x",
        "n": 0,
        "b": False,
        "j": None,
    }


async def test_a_statement_error_is_psycopgs_and_the_connection_stays(pool: AsyncPostgres) -> None:
    pid = await _backend_pid(pool)
    with pytest.raises(errors.DivisionByZero):
        await pool.fetch_value(b"SELECT to_json(1 / $1::integer)", (0,))
    with pytest.raises(errors.UndefinedFunction):
        await pool.fetch_value(b"SELECT kotally_no_such_function()", ())
    assert await _backend_pid(pool) == pid  # idle again, not in a failed transaction: reused


async def test_a_lost_connection_is_503_and_replaced(
    pool: AsyncPostgres, settings: Settings
) -> None:
    pid = await _backend_pid(pool)
    with psycopg.connect(settings.database_url.replace("+psycopg", ""), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    await asyncio.sleep(0.1)
    with pytest.raises(ServiceUnavailable):
        await _backend_pid(pool)
    assert await _backend_pid(pool) != pid  # a new connection


async def test_a_cancelled_statement_leaves_its_connection_closed(pool: AsyncPostgres) -> None:
    pid = await _backend_pid(pool)
    task = asyncio.ensure_future(pool.fetch_value(b"SELECT to_json(1) FROM pg_sleep(2)", ()))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _backend_pid(pool) != pid  # never handed out mid-statement
